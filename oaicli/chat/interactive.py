"""`oaicli chat` with no prompt on a terminal: the interactive loop."""

from oaicli.chat.session import Chat
from oaicli.chat.stdin import check_utf8
from oaicli.core.errors import OaicliError
from oaicli.output import writers as output


class InteractiveLoop:
    """Read a question, answer it, repeat. /exit, /reset, /history; `\"\"\"` brackets multi-line input;
    Ctrl-C during an answer cancels it (nothing saved) and returns to the prompt; Ctrl-D leaves."""

    def __init__(self, chat: Chat):
        self.chat = chat
        self.invocation = chat.invocation
        self.terminal = chat.invocation.stdin_tty
        self.history: list = []  # stateless loop: kept in memory only

    def run(self, first: str | None) -> int:
        if self.terminal:
            try:
                import readline  # noqa: F401  line editing and history for input() (see line())
            except ImportError:
                pass
            where = f" (session {self.chat.session_name})" if self.chat.session_name else ""
            self.invocation.say(f"Chatting with {self.chat.model}{where}. /exit to leave, /reset, /history; "
                                f"\"\"\" for multi-line input.")
        question = first
        while True:
            if question is None:
                try:
                    question = self.read()
                except EOFError:
                    if self.terminal:  # Ctrl-D: the shell's prompt goes on a line of its own
                        self.invocation.say("")
                    return 0
                except KeyboardInterrupt:
                    self.invocation.say("")
                    continue
            command, question = question.strip(), question
            if command in ("/exit", "/quit"):
                return 0
            if command in ("/reset", "/history"):
                self.reset() if command == "/reset" else self.show_history()
            elif command:
                self.turn(question)
            question = None

    def read(self) -> str:
        first = self.line("> ")
        if first.strip() != '"""':
            return first
        lines = []
        while True:
            line = self.line("... ")
            if line.strip() == '"""':
                return "\n".join(lines)
            lines.append(line)

    def line(self, prompt: str) -> str:
        if self.terminal:
            # The prompt goes to stderr (stdout carries only answers); input() rather than readline() so
            # that the readline module gives arrow keys and history (it uses the module only on a tty).
            self.invocation.stderr.write(prompt)
            self.invocation.stderr.flush()
            return input()
        line = self.invocation.stdin.readline()
        if not line:
            raise EOFError
        return line.rstrip("\n")

    def turn(self, question: str) -> None:
        chat = self.chat
        try:
            check_utf8(question, "That line")  # a pasted binary line is refused; the loop goes on
            if chat.session_name:
                chat.session_turn(question)
            else:
                context = chat.context(chat.model, chat.system)
                response = chat.guarded(lambda: chat.ask(context, self.history, question))
                self.history.extend(context.turns(question, response))
        except KeyboardInterrupt:
            return  # guarded() said the turn was not saved
        except OaicliError as exc:
            self.invocation.say(exc.one_line())

    def reset(self) -> None:
        if self.chat.session_name:
            self.chat.open_store().reset(self.chat.session_name)
            self.chat.notice(f"Session {self.chat.session_name!r} cleared.")
        else:
            self.history.clear()
            self.chat.notice("Conversation cleared.")

    def show_history(self) -> None:
        if self.chat.session_name:
            messages = self.chat.open_store().export_messages(self.chat.session_name)
        else:
            messages = [turn.message() for turn in self.history]
        for message in messages:
            output.write(f"{message['role']}: {message['content']}", stream=self.invocation.stdout)
        if not messages:
            self.chat.notice("No turns yet.")
