"""A freedesktop notification service for tests: owns ``org.freedesktop.Notifications`` on the session bus
given by ``DBUS_SESSION_BUS_ADDRESS`` and records every ``Notify`` it receives.

Run as ``python -m tests.gui.notification_service RECORD_FILE``. It prints ``ready`` once it owns the name,
then answers ``Notify`` (with a new id), ``CloseNotification``, ``GetCapabilities`` and
``GetServerInformation`` as a notification daemon does, checking the call's signature the way strict
servers (GNOME Shell, dunst, Plasma) do. Each accepted ``Notify`` is appended to RECORD_FILE as one JSON
line; a file ``RECORD_FILE.invoke`` holding an id makes the service emit ``ActionInvoked(id, "default")``,
as if the user clicked that notification.

Written with ``jeepney`` (a pure-Python D-Bus implementation), so the app's QtDBus calls are checked by an
independent implementation of the wire protocol.
"""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path

from jeepney import DBusAddress, HeaderFields, MessageType, new_error, new_method_return, new_signal
from jeepney.bus_messages import message_bus
from jeepney.io.blocking import open_dbus_connection

NAME = "org.freedesktop.Notifications"
PATH = "/org/freedesktop/Notifications"
NOTIFY_SIGNATURE = "susssasa{sv}i"
INTROSPECTION = """<node>
 <interface name="org.freedesktop.Notifications">
  <method name="Notify">
   <arg type="s" direction="in"/><arg type="u" direction="in"/><arg type="s" direction="in"/>
   <arg type="s" direction="in"/><arg type="s" direction="in"/><arg type="as" direction="in"/>
   <arg type="a{sv}" direction="in"/><arg type="i" direction="in"/><arg type="u" direction="out"/>
  </method>
  <method name="CloseNotification"><arg type="u" direction="in"/></method>
  <method name="GetCapabilities"><arg type="as" direction="out"/></method>
  <method name="GetServerInformation">
   <arg type="s" direction="out"/><arg type="s" direction="out"/><arg type="s" direction="out"/>
   <arg type="s" direction="out"/>
  </method>
  <signal name="NotificationClosed"><arg type="u"/><arg type="u"/></signal>
  <signal name="ActionInvoked"><arg type="u"/><arg type="s"/></signal>
 </interface>
</node>"""


def main() -> None:
    record = Path(sys.argv[1])
    invoke = record.with_name(record.name + ".invoke")
    connection = open_dbus_connection(bus="SESSION")
    reply = connection.send_and_get_reply(message_bus.RequestName(NAME, 4))  # 4: do not queue
    if reply.body[0] != 1:
        raise SystemExit(f"could not own {NAME}: {reply.body}")
    print("ready", flush=True)
    ids = itertools.count(1)
    emitter = DBusAddress(PATH, interface=NAME)
    while True:
        if invoke.exists():
            clicked = int(invoke.read_text())
            invoke.unlink()
            connection.send(new_signal(emitter, "ActionInvoked", "us", (clicked, "default")))
        try:
            message = connection.receive(timeout=0.05)
        except TimeoutError:
            continue
        header = message.header
        if header.message_type is not MessageType.method_call:
            continue
        member = header.fields.get(HeaderFields.member)
        signature = header.fields.get(HeaderFields.signature, "")
        if member == "Notify":
            if signature != NOTIFY_SIGNATURE:
                connection.send(
                    new_error(
                        message,
                        "org.freedesktop.DBus.Error.InvalidArgs",
                        "s",
                        (f"Type of message, '({signature})', does not match expected type '({NOTIFY_SIGNATURE})'",),
                    )
                )
                continue
            app, replaces, icon, summary, body, actions, hints, timeout = message.body
            number = replaces or next(ids)
            entry = {
                "id": number,
                "app_name": app,
                "replaces_id": replaces,
                "app_icon": icon,
                "summary": summary,
                "body": body,
                "actions": actions,
                "hints": {key: value[1] for key, value in hints.items()},
                "expire_timeout": timeout,
            }
            with record.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(entry) + "\n")
            connection.send(new_method_return(message, "u", (number,)))
        elif member == "GetCapabilities":
            connection.send(new_method_return(message, "as", (["actions", "body", "persistence"],)))
        elif member == "GetServerInformation":
            connection.send(new_method_return(message, "ssss", ("test-notifications", "desktop-chat", "1", "1.2")))
        elif member == "Introspect":
            connection.send(new_method_return(message, "s", (INTROSPECTION,)))
        elif member == "CloseNotification":
            connection.send(new_method_return(message))
        else:
            connection.send(new_error(message, "org.freedesktop.DBus.Error.UnknownMethod", "s", (str(member),)))


if __name__ == "__main__":
    main()
