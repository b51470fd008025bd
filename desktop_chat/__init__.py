"""desktop-chat: a desktop chat client over Supabase with a Redis read cache."""

__version__ = "0.1.0"
# The application id: the desktop entry's and AppStream file's name, the Wayland app id, the macOS bundle id.
APP_ID = "org.desktopchat.DesktopChat"
