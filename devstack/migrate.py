"""Apply the Supabase baseline (with the ``realtime`` schema), the project's migrations (in order, recorded) and
the seed."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from devstack.config import DB_PASSWORD
from devstack.procs import DevstackError

BASELINE = Path(__file__).parent / "sql" / "baseline.sql"
REALTIME = Path(__file__).parent / "sql" / "realtime.sql"
"""The ``realtime`` schema objects a Supabase project has (applied after the baseline, before migrations)."""
_MIGRATION_NAME = re.compile(r"^(?P<version>\d{14})_(?P<name>[A-Za-z0-9_\-]+)\.sql$")

# Where the Supabase CLI records applied migrations and seed files; it creates them itself, as the user
# that runs the migrations (``postgres``), and so does devstack.
_TRACKING_TABLES = """
create schema if not exists supabase_migrations;
create table if not exists supabase_migrations.schema_migrations (
  version text primary key,
  statements text[],
  name text
);
create table if not exists supabase_migrations.seed_files (
  path text primary key,
  hash text not null
)
"""


class MigrationError(DevstackError):
    """A migration or seed file failed; the database is left as it was before the run."""


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    path: Path


@dataclass
class MigrationReport:
    applied: list[str] = field(default_factory=list)
    seeded: bool = False


def discover(migrations_dir: Path) -> list[Migration]:
    """Migration files in version order; a misnamed ``.sql`` file is an error, not silently skipped."""
    found: list[Migration] = []
    if not migrations_dir.is_dir():
        return found
    for path in sorted(migrations_dir.glob("*.sql")):
        match = _MIGRATION_NAME.match(path.name)
        if match is None:
            raise MigrationError(
                f"{path}: migration files are named <14-digit timestamp>_<name>.sql "
                "(as `supabase migration new` makes them)"
            )
        found.append(Migration(match["version"], match["name"], path))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"{migrations_dir}: two migrations share a version")
    return found


def describe_error(path: Path, sql: str, error: asyncpg.PostgresError) -> str:
    """``file:line: ERROR: message`` plus Postgres's detail and hint, for a failed SQL file."""
    where = str(path)
    position = getattr(error, "position", None)
    if position:
        try:
            line = sql[: int(position)].count("\n") + 1
            where = f"{path}:{line}"
        except ValueError:
            pass
    parts = [f"{where}: ERROR {error.sqlstate}: {error}"]
    for label in ("detail", "hint", "context"):
        value = getattr(error, label, None)
        if value:
            parts.append(f"  {label.upper()}: {value}")
    return "\n".join(parts)


async def apply_baseline(conn: asyncpg.Connection) -> None:
    """The platform's part (``baseline.sql``, then ``realtime.sql``), as the platform's superuser applies it."""
    baseline = BASELINE.read_text()
    try:
        async with conn.transaction():
            await conn.execute(baseline)
            for role in ("authenticator", "supabase_auth_admin"):
                # Passwords are not secrets here (the Supabase CLI's local default), but they are
                # set from config rather than written into the baseline file.
                await conn.execute(f"alter role {role} with login password '{DB_PASSWORD}'")
    except asyncpg.PostgresError as error:
        raise MigrationError(describe_error(BASELINE, baseline, error)) from None
    realtime = REALTIME.read_text()
    try:
        async with conn.transaction():
            await conn.execute(realtime)
    except asyncpg.PostgresError as error:
        raise MigrationError(describe_error(REALTIME, realtime, error)) from None


async def apply(
    db_url: str, supabase_dir: Path, *, seed: bool = True, platform_url: str | None = None
) -> MigrationReport:
    """Bring the database up to date.

    The baseline is applied first, through ``platform_url`` when given (the platform's superuser, while
    ``db_url`` is the project's ``postgres`` as on a hosted project), else through ``db_url``. All pending
    migrations run in one transaction, so a failure leaves the database exactly as it was. The seed runs
    once per cluster (again after ``devstack reset``).
    """
    report = MigrationReport()
    migrations = discover(supabase_dir / "migrations")
    if platform_url is not None:
        platform = await asyncpg.connect(platform_url, timeout=30)
        try:
            await apply_baseline(platform)
        finally:
            await platform.close()
    conn = await asyncpg.connect(db_url, timeout=30)
    try:
        if platform_url is None:
            await apply_baseline(conn)
        await conn.execute(_TRACKING_TABLES)

        rows = await conn.fetch("select version from supabase_migrations.schema_migrations")
        done = {row["version"] for row in rows}
        pending = [m for m in migrations if m.version not in done]
        if pending:
            async with conn.transaction():
                for migration in pending:
                    sql = migration.path.read_text()
                    try:
                        await conn.execute(sql)
                    except asyncpg.PostgresError as error:
                        raise MigrationError(describe_error(migration.path, sql, error)) from None
                    await conn.execute(
                        "insert into supabase_migrations.schema_migrations (version, name, statements)"
                        " values ($1, $2, $3)",
                        migration.version,
                        migration.name,
                        [sql],
                    )
                    report.applied.append(migration.path.name)

        seed_path = supabase_dir / "seed.sql"
        if seed and seed_path.is_file():
            seeded = await conn.fetchval("select count(*) from supabase_migrations.seed_files")
            if not seeded:
                sql = seed_path.read_text()
                async with conn.transaction():
                    try:
                        await conn.execute(sql)
                    except asyncpg.PostgresError as error:
                        raise MigrationError(describe_error(seed_path, sql, error)) from None
                    await conn.execute(
                        "insert into supabase_migrations.seed_files (path, hash) values ($1, $2)",
                        "seed.sql",
                        hashlib.sha256(sql.encode()).hexdigest(),
                    )
                report.seeded = True
    finally:
        await conn.close()
    return report
