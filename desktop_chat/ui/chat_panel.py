"""The right pane: the open chat's header, its messages and the composer.

It also keeps the read marker honest: when the window is active and messages are on screen, the newest
visible ``seq`` is reported with ``mark_read``, at most a few times a second.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import cast

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QMenu, QToolButton, QVBoxLayout, QWidget

from desktop_chat.dal.api import ConnectionState, StoreStatus, Timeline
from desktop_chat.models import ChatDetails, ChatId, MemberRole, Message, MessageId, ReadState, ShownReaction, UserId
from desktop_chat.ui.bridge import Operation, StoreBridge
from desktop_chat.ui.chat_list_model import ChatListModel
from desktop_chat.ui.composer import Composer
from desktop_chat.ui.dialogs import Confirm, MembersDialog, RenameChatDialog, ask_confirmation
from desktop_chat.ui.text import plural, typing_line
from desktop_chat.ui.theme import LIGHT, Colors
from desktop_chat.ui.timeline_model import TimelineModel
from desktop_chat.ui.timeline_view import TimelineView

READ_DEBOUNCE_MS = 400
# Opening a chat with more unread than a page loads older pages until the first unread one is there, up to
# this many pages; beyond that the chat opens at the oldest loaded message, the jump button counting the rest.
SEEK_UNREAD_PAGES = 8
PAGE = 50  # messages per page the store loads
_PANEL_OPERATIONS = {
    Operation.OPEN_CHAT.value: "Cannot open this chat",
    Operation.LOAD_OLDER.value: "Cannot load older messages",
    Operation.OPEN_AT.value: "Cannot show the message",
    Operation.LOAD_NEWER.value: "Cannot load newer messages",
    Operation.RETRY.value: "Cannot retry",
    Operation.DISCARD.value: "Cannot discard",
    Operation.EDIT_MESSAGE.value: "Cannot edit the message",
    Operation.DELETE_MESSAGE.value: "Cannot delete the message",
    Operation.TOGGLE_REACTION.value: "Cannot react",
    Operation.LEAVE_CHAT.value: "Cannot leave the chat",
    Operation.DELETE_CHAT.value: "Cannot delete the chat",
}


class ChatPanel(QWidget):
    """The open chat.

    Args:
        bridge: The data layer.
        chats: The chat list (titles and roles of chats).
        colors: Custom colours.
        confirm: Asks before destructive actions (a seam for tests).
        is_active: Whether the user can see the panel now (window active); a seam for tests.
        parent: Qt parent.

    Signals:
        chat_closed(object): The ``ChatId`` shown until now is gone (left or deleted).
        jump_to_message_requested(object, int): A reply's quote was clicked: ``(ChatId, seq)`` of the
            original. The panel shows it itself (``show_message``: scrolled to when loaded, otherwise a
            window around it, however old).
    """

    chat_closed = Signal(object)
    jump_to_message_requested = Signal(object, int)

    def __init__(
        self,
        bridge: StoreBridge,
        chats: ChatListModel,
        *,
        colors: Colors = LIGHT,
        confirm: Confirm = ask_confirmation,
        is_active: Callable[[], bool] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("chatPanel")
        self._bridge = bridge
        self._chats = chats
        self._confirm = confirm
        self._is_active = is_active or (lambda: self.isVisible() and self.window().isActiveWindow())
        self._session: ChatId | None = None
        self._details: ChatDetails | None = None
        # Every name this window has learnt (from any chat's members), for senders the open chat's details
        # do not name (yet): its details could not be loaded (offline), or someone joined since.
        self._known_names: dict[UserId, str] = {}
        self._asked_for: set[UserId] = set()  # unknown senders a details reload was asked for, this chat
        self._details_pending = False
        self._names_missing = False
        self._typing: frozenset[UserId] = frozenset()
        self._read_seq = 0
        self._unread_on_open = 0
        self._seek_pages = 0
        self._seeking = False
        # A jump under way (``show_message``): the seq asked for, and whether it is the unread divider's.
        self._jump_seq: int | None = None
        self._jump_to_divider = False
        self._joining = False  # the newest page was asked for to leave a window around an old message

        self.title_label = QLabel(self)
        self.title_label.setObjectName("chatTitle")
        self.title_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.subtitle_label = QLabel(self)
        self.subtitle_label.setObjectName("chatSubtitle")
        self.members_button = QToolButton(self)
        self.members_button.setText("Members")
        self.members_button.setAccessibleName("Members")
        self.members_button.clicked.connect(self.show_members)
        self.menu_button = QToolButton(self)
        self.menu_button.setObjectName("chatMenuButton")
        self.menu_button.setText("⋯")
        self.menu_button.setToolTip("Chat actions")
        self.menu_button.setAccessibleName("Chat actions")
        self.menu_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.chat_menu = QMenu(self)
        self.chat_menu.aboutToShow.connect(self._fill_menu)
        self.menu_button.setMenu(self.chat_menu)

        self.notice = QLabel(self)
        self.notice.setObjectName("panelNotice")
        self.notice.setWordWrap(True)
        self.notice.hide()

        self.model = TimelineModel(bridge, parent=self)
        self.model.set_own_user(bridge.current_user.id if bridge.current_user else None)
        self.view = TimelineView(self.model, colors, self)
        self.composer = Composer(self)

        header = QWidget(self)
        header.setObjectName("chatHeader")
        titles = QVBoxLayout()
        titles.setSpacing(0)
        titles.addWidget(self.title_label)
        titles.addWidget(self.subtitle_label)
        header_layout = QHBoxLayout(header)
        unit = max(3, self.fontMetrics().height() // 3)
        header_layout.setContentsMargins(unit * 4, unit * 2, unit * 3, unit * 2)
        header_layout.addLayout(titles, 1)
        header_layout.addWidget(self.members_button)
        header_layout.addWidget(self.menu_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(header)
        layout.addWidget(self.notice)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.composer)

        self._read_timer = QTimer(self)
        self._read_timer.setSingleShot(True)
        self._read_timer.setInterval(READ_DEBOUNCE_MS)
        self._read_timer.timeout.connect(self.mark_read_now)

        self.composer.send_requested.connect(self._send)
        self.composer.reply_submitted.connect(self._send_reply)
        self.composer.reply_step.connect(self.step_reply)
        self.view.reply_requested.connect(self.reply_to)
        self.view.reaction_toggled.connect(self._toggle_reaction)
        self.view.jump_requested.connect(self.jump_to_message_requested)
        self.view.jump_requested.connect(self.show_message)
        self.model.quote_wanted.connect(self._bridge.find_message)
        bridge.message_found.connect(self._on_message_found)
        bridge.reactions_changed.connect(self._on_reactions)
        bridge.reads_changed.connect(self._on_reads)
        self.composer.edit_submitted.connect(self._bridge.edit_message)
        self.composer.typing_changed.connect(self._typing_changed)
        self.composer.editor.jump_to_newest.connect(self.view.scroll_to_newest)
        self.view.live_end_requested.connect(self.show_newest)
        self.view.retry_requested.connect(self._bridge.retry)
        self.view.discard_requested.connect(self._bridge.discard)
        self.view.edit_requested.connect(self.composer.start_edit)
        self.view.delete_requested.connect(self._delete_message)
        self.view.visible_rows_changed.connect(self._read_timer.start)
        self.model.rowsInserted.connect(self._read_timer.start)
        bridge.chat_opened.connect(self._on_chat_opened)
        bridge.chat_opened_at.connect(self._on_chat_opened_at)
        bridge.older_loaded.connect(self._on_older_loaded)
        bridge.chat_details_loaded.connect(self._on_details)
        bridge.status_changed.connect(self._on_status)
        self.model.rowsInserted.connect(self._check_senders)
        self.model.modelReset.connect(self._check_senders)
        bridge.chat_changed.connect(self._on_chat_changed)
        bridge.typing_changed.connect(self._on_typing)
        bridge.message_queued.connect(self._on_queued)
        bridge.failed.connect(self._on_failed)
        bridge.chat_left.connect(self._on_chat_left)
        chats.dataChanged.connect(self._refresh_header)
        chats.modelReset.connect(self._refresh_header)
        chats.rowsMoved.connect(self._refresh_header)
        self.setEnabled(False)

    # --- public --------------------------------------------------------------------------------------
    @property
    def chat_id(self) -> ChatId | None:
        return self._session

    def set_colors(self, colors: Colors) -> None:
        self.view.set_colors(colors)

    def set_own_user(self, user_id: UserId | None) -> None:
        self.model.set_own_user(user_id)
        self._chats.set_own_user(user_id)

    def show_chat(self, chat_id: ChatId) -> None:
        """Open ``chat_id`` (its newest page appears as soon as the store hands out the timeline)."""
        if chat_id == self._session:
            return
        self._switch_to(chat_id)
        self._bridge.open_chat(chat_id)
        self._load_details()

    def show_message(self, chat_id: ChatId, seq: int) -> None:
        """Open ``chat_id`` at message ``seq``, however old, centred and marked for a moment (a search
        result, a quoted reply). In the open chat a loaded message is scrolled to at once; otherwise the
        store loads a window around it (``ChatStoreAPI.open_at``) and the view follows when it is there.
        """
        if chat_id == self._session:
            known = self.model.row_of_seq(seq)
            if known is not None and self.view.scroll_to_message(known):
                return
        else:
            self._switch_to(chat_id)
            self._unread_on_open = 0  # opened at the message, not where the unread ones start
            self._load_details()
        self._jump_seq = seq
        self._jump_to_divider = False
        self._bridge.open_at(chat_id, seq)

    def show_newest(self) -> None:
        """Show the newest messages and follow them (Ctrl+End): after a jump far back, the store's newest
        page replaces the window around the old message."""
        if self._session is None:
            return
        if not self.model.has_newer():
            self.view.scroll_to_newest()
            return
        self._joining = True
        self._jump_seq = None
        self._bridge.open_chat(self._session)

    def _switch_to(self, chat_id: ChatId) -> None:
        if self._session is not None:
            self._bridge.close_chat(self._session)
        self._session = chat_id
        self._details = None
        self._asked_for = set()
        self._names_missing = False
        self._typing = frozenset()
        self.model.clear()
        self.view.message_delegate.forget()
        summary = self._chats.summary(chat_id)
        self._read_seq = summary.last_read_seq if summary else 0
        self._unread_on_open = summary.unread_count if summary else 0
        self._seek_pages = 0
        self._seeking = False
        self._jump_seq = None
        self._jump_to_divider = False
        self._joining = False
        self.notice.hide()
        self.composer.reset()
        self.setEnabled(True)
        self._refresh_header()

    def clear(self) -> None:
        """Show no chat."""
        if self._session is not None:
            self._bridge.close_chat(self._session)
        self._session = None
        self._details = None
        self.model.clear()
        self.composer.reset()
        self.title_label.clear()
        self.subtitle_label.clear()
        self.setEnabled(False)

    def focus_composer(self) -> None:
        self.composer.editor.setFocus(Qt.FocusReason.OtherFocusReason)

    def mark_read_now(self) -> None:
        """Report the newest message on screen as read, if the user can see it and it is newer."""
        if self._session is None or not self._is_active():
            return
        seq = self.view.newest_visible_seq()
        if seq is not None and seq > self._read_seq:
            self._read_seq = seq
            self._bridge.mark_read(self._session, seq)

    def is_owner(self) -> bool:
        summary = self._chats.summary(self._session) if self._session else None
        return summary is not None and summary.role is MemberRole.OWNER

    # --- chat actions --------------------------------------------------------------------------------
    def show_members(self) -> None:
        if self._session is None:
            return
        own = self._bridge.current_user.id if self._bridge.current_user else None
        dialog = MembersDialog(self._bridge, self._session, own_user=own, parent=self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()

    def rename(self) -> None:
        if self._session is None:
            return
        dialog = RenameChatDialog(self._bridge, self._session, self.title_label.text(), self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()

    def leave(self) -> None:
        if self._session is None:
            return
        title = self.title_label.text()
        if self._confirm(self, "Leave chat", f"Leave “{title}”? You will no longer see its messages.", "Leave"):
            self._bridge.leave_chat(self._session)

    def delete(self) -> None:
        if self._session is None or not self.is_owner():
            return
        title = self.title_label.text()
        question = f"Delete “{title}” for everyone? This cannot be undone."
        if self._confirm(self, "Delete chat", question, "Delete chat"):
            self._bridge.delete_chat(self._session)

    def _fill_menu(self) -> None:
        self.chat_menu.clear()
        owner = self.is_owner()
        rename = self.chat_menu.addAction("Rename…", self.rename)
        rename.setEnabled(owner)
        self.chat_menu.addAction("Members…", self.show_members)
        self.chat_menu.addSeparator()
        self.chat_menu.addAction("Leave chat…", self.leave)
        delete = self.chat_menu.addAction("Delete chat…", self.delete)
        delete.setEnabled(owner)

    def _delete_message(self, message: Message) -> None:
        if self._confirm(self, "Delete message", "Delete this message for everyone?", "Delete"):
            self._bridge.delete_message(message.id)
        self.focus_composer()  # back to where the user writes, whatever they answered

    def reply_to(self, message: Message) -> None:
        """Start a reply to ``message`` in the composer."""
        self.composer.start_reply(message, self.model.sender_name(message))

    def step_reply(self, step: int) -> None:
        """Ctrl+Up / Ctrl+Down in the composer: reply to the message before or after the current one."""
        candidates = [m for m in self.model.items() if m.seq is not None and not m.deleted]
        if not candidates:
            return
        current = self.composer.replying_to
        ids = [m.id for m in candidates]
        if current not in ids:
            if step < 0:
                self.reply_to(candidates[-1])
            return
        position = ids.index(current) + step
        if position >= len(candidates):
            self.composer.cancel_reply()  # past the newest: no reply
            return
        chosen = candidates[max(0, position)]
        self.reply_to(chosen)
        self.view.scroll_to_message(chosen.id)

    # --- reacting to the bridge ----------------------------------------------------------------------
    def _send(self, text: str) -> None:
        if self._session is not None:
            if self.model.has_newer():
                self.show_newest()  # what one writes shows at the newest end: go there
            self._bridge.send(self._session, text)

    def _send_reply(self, text: str, reply_to: MessageId) -> None:
        if self._session is not None:
            self._bridge.send_reply(self._session, text, reply_to)

    def _toggle_reaction(self, message_id: MessageId, emoji: str) -> None:
        if self._session is not None:
            self._bridge.toggle_reaction(self._session, message_id, emoji)

    def _on_message_found(self, chat_id: ChatId, message_id: MessageId, message: Message | None) -> None:
        if chat_id == self._session:
            self.model.set_original(message_id, message)

    def _on_reactions(self, chat_id: ChatId, shown: Mapping[MessageId, tuple[ShownReaction, ...]]) -> None:
        if chat_id == self._session:
            self.model.set_reactions(shown)

    def _on_reads(self, state: ReadState) -> None:
        if state.chat_id == self._session:
            self.model.set_read_state(state)

    def _typing_changed(self, typing: bool) -> None:
        if self._session is not None:
            self._bridge.set_typing(self._session, typing)

    def _on_chat_opened(self, chat_id: ChatId, timeline: Timeline) -> None:
        if chat_id != self._session or self._jump_seq is not None:
            return  # another chat, or a jump is on its way (its own signal comes)
        self.model.show_timeline(chat_id, timeline)
        self.model.set_names(self._names())  # what is known now; the chat's members follow
        self.model.set_reactions(self._bridge.reactions(chat_id), replace=True)
        self.model.set_read_state(self._bridge.read_state(chat_id))
        if self._joining:
            self._joining = False
            self.view.scroll_to_newest()
        elif self._unread_on_open > SEEK_UNREAD_PAGES * PAGE and self._bridge.has_older(chat_id):
            # Far more unread than the pages a seek would load: jump to where they start instead.
            self.model.set_unread_after(self._read_seq)
            self._jump_seq = self._read_seq + 1
            self._jump_to_divider = True
            self._bridge.open_at(chat_id, self._jump_seq)
        elif self._unread_on_open:
            # Open where the unread messages start, under a "new messages" divider, not at the newest.
            self.model.set_unread_after(self._read_seq)
            self._seek_first_unread()
        else:
            self.view.scroll_to_newest()
        self._read_timer.start()

    def _on_chat_opened_at(self, chat_id: ChatId, timeline: Timeline, seq: int) -> None:
        if chat_id != self._session or seq != self._jump_seq:
            return  # another chat, or a jump the user has already moved on from
        self._jump_seq = None
        target = next((message.id for message in timeline.rows if message.seq == seq), None)
        self.model.show_timeline(chat_id, timeline, focus=target)
        self.model.set_names(self._names())
        if self._jump_to_divider:
            self._jump_to_divider = False
            self.model.set_unread_after(self._read_seq)
            if not self.view.scroll_to_first_unread():
                self.view.scroll_to_newest()
        elif target is None or not self.view.scroll_to_message(target):
            self.notice.setText("That message is not there any more.")
            self.notice.show()
        self._read_timer.start()

    def _seek_first_unread(self) -> None:
        chat_id = self._session
        if chat_id is None:
            return
        oldest = self.model.oldest_loaded_seq()
        missing = oldest is not None and oldest > self._read_seq + 1
        if missing and self._seek_pages < SEEK_UNREAD_PAGES and self._bridge.has_older(chat_id):
            self._seek_pages += 1
            self._seeking = True
            self._bridge.load_older(chat_id)  # _on_older_loaded comes back here
            return
        self._seeking = False
        if not self.view.scroll_to_first_unread():
            self.view.scroll_to_newest()

    def _on_older_loaded(self, chat_id: ChatId, _count: int) -> None:
        if chat_id == self._session and self._seeking:
            self._seek_first_unread()

    def _on_details(self, details: ChatDetails) -> None:
        for member in details.members:
            if member.display_name:
                self._known_names[member.user_id] = member.display_name
        if details.chat.id != self._session:
            if self._session is not None:
                self.model.set_names(self._names())  # what another chat taught may name someone here too
            return
        self._details = details
        self._details_pending = False
        self._names_missing = False
        self.model.set_members(member.user_id for member in details.members)
        self.model.set_names(self._names())
        self._refresh_header()
        self._check_senders()

    def _names(self) -> dict[UserId, str]:
        names = dict(self._known_names)
        if self._details is not None:
            names.update({m.user_id: m.display_name for m in self._details.members if m.display_name})
        return names

    def _on_status(self, status: StoreStatus) -> None:
        # Back online: what could not be loaded offline (the members, and with them names) is loaded now.
        wanted = self._details is None or self._names_missing
        live = status.backend_reachable and status.connection is ConnectionState.LIVE
        if self._session is not None and wanted and live and not self._details_pending:
            self._load_details()

    def _check_senders(self, *_: object) -> None:
        """A message from someone this window cannot name: their profile can be read, so load the members."""
        if self._session is None or self._details_pending:
            return
        names = self._names()
        unknown = {
            message.sender_id
            for message in self.model.items()
            if message.sender_id is not None and message.sender_id not in names and not self.model.is_own(message)
        } - self._asked_for
        if unknown:
            self._asked_for |= unknown
            self._load_details()

    def _on_chat_changed(self, chat_id: ChatId) -> None:
        if chat_id == self._session:
            self._load_details()

    def _load_details(self) -> None:
        if self._session is not None:
            self._details_pending = True
            self._bridge.load_chat_details(self._session)

    def _on_typing(self, chat_id: ChatId, users: frozenset[UserId]) -> None:
        own = self._bridge.current_user.id if self._bridge.current_user else None
        self._chats.set_typing(chat_id, users)
        if chat_id == self._session:
            self._typing = frozenset(user for user in users if user != own)
            self._refresh_header()

    def _on_queued(self, chat_id: ChatId, _message_id: MessageId) -> None:
        if chat_id == self._session:
            self.view.scroll_to_newest()

    def _on_failed(self, operation: str, message: str, context: object) -> None:
        if operation == Operation.CHAT_DETAILS.value and context == self._session:
            self._details_pending = False
            self._names_missing = bool(self._asked_for)  # tried again when the server is back (_on_status)
            return
        if operation == Operation.SEND.value:
            chat_id, text = cast(tuple[ChatId, str], context)
            if chat_id == self._session:
                self.composer.give_back(text)  # first: editing the text clears an earlier error
                self.composer.show_error(message)
            return
        if operation == Operation.EDIT_MESSAGE.value:
            self.composer.show_error(message)
            return
        prefix = _PANEL_OPERATIONS.get(operation)
        if prefix is None:
            return
        session_operations = (Operation.OPEN_CHAT.value, Operation.LOAD_OLDER.value, Operation.OPEN_AT.value)
        if operation in (*session_operations, Operation.LOAD_NEWER.value) and context != self._session:
            return
        self.notice.setText(f"{prefix}: {message}")
        self.notice.show()
        if operation == Operation.OPEN_AT.value and self._jump_seq is not None and self.model.chat_id != context:
            # The chat was switched to for the jump and shows nothing yet: its newest messages, at least.
            self._jump_seq = None
            self._jump_to_divider = False
            self._bridge.open_chat(cast(ChatId, context))

    def _on_chat_left(self, chat_id: ChatId) -> None:
        if chat_id == self._session:
            self.clear()
            self.chat_closed.emit(chat_id)

    def _refresh_header(self, *_: object) -> None:
        if self._session is None:
            return
        summary = self._chats.summary(self._session)
        title = summary.chat.title if summary else (self._details.chat.title if self._details else "")
        self.title_label.setText(title)
        self.title_label.setAccessibleName(f"Chat: {title}")
        if self._typing:
            names = self._names()
            self.subtitle_label.setText(typing_line([names.get(user, "Someone") for user in sorted(self._typing)]))
            self.subtitle_label.setProperty("typing", True)
        else:
            count = self._details.members_total if self._details else 0
            self.subtitle_label.setText(plural(count, "member") if count else "")
            self.subtitle_label.setProperty("typing", False)
        self.subtitle_label.style().unpolish(self.subtitle_label)
        self.subtitle_label.style().polish(self.subtitle_label)

    # --- window activation ---------------------------------------------------------------------------
    def schedule_mark_read(self) -> None:
        """The user may be looking at new messages now (the window came to the front): mark them read soon."""
        self._read_timer.start()
