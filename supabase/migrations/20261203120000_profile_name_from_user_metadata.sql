-- A display name changed through the auth API (`update_user({"data": {"display_name": ...}})`, or an
-- admin's `user_metadata`) reaches the user's profile, as the sign-up trigger takes the first one from the
-- sign-up metadata. The profile can still be renamed directly (its own update policy); whichever comes
-- last wins. Only a non-blank display_name that changed is taken (trimmed, at most 100 characters);
-- removing the key leaves the profile as it is.

create function private.sync_profile_name() returns trigger
language plpgsql security definer set search_path = ''
as $$
declare
  v_name text := btrim(new.raw_user_meta_data ->> 'display_name');
begin
  if v_name is not null and v_name ~ '[^[:space:]]' then
    update public.profiles set display_name = left(v_name, 100) where id = new.id;
  end if;
  return new;
end
$$;

revoke all on function private.sync_profile_name() from public;

create trigger on_auth_user_metadata_updated
  after update of raw_user_meta_data on auth.users
  for each row
  when (old.raw_user_meta_data ->> 'display_name' is distinct from new.raw_user_meta_data ->> 'display_name')
  execute function private.sync_profile_name();
