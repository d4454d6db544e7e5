"""`oaicli chat` with no prompt on a terminal: the interactive loop."""

import re

from oaicli.chat.session import Chat
from oaicli.chat.stdin import check_utf8
from oaicli.core.errors import OaicliError
from oaicli.output import writers as output

# The loop's own commands; a line that looks like one of them is never sent to the model.
COMMANDS = {
    "/help": "list these commands",
    "/history": "show the conversation so far",
    "/reset": "clear the conversation (a session's stored turns too)",
    "/exit": "leave (also /quit or Ctrl-D)",
}
QUIT = ("/exit", "/quit")
LOOKS_LIKE_A_COMMAND = re.compile(r"/[A-Za-z][\w-]*")


class InteractiveLoop:
    """Read a question, answer it, repeat. /help, /exit (/quit), /reset, /history; an unknown /word is
    refused, not sent (`//text` sends `/text`); `\"\"\"` brackets multi-line input; Ctrl-C during an
    answer cancels it (nothing saved) and returns to the prompt; Ctrl-D leaves."""

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
            self.invocation.say(f"Chatting with {self.chat.model}{where}. /help lists the commands, /exit leaves; "
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
            command = question.strip()
            if command in QUIT:
                return 0
            if LOOKS_LIKE_A_COMMAND.fullmatch(command):
                self.run_command(command)
            elif command:
                self.turn(command[1:] if command.startswith("//") else question)
            question = None

    def run_command(self, command: str) -> None:
        if command == "/help":
            lines = {**COMMANDS, '"""': "start and end a multi-line question", "//text": "send a line that starts with /"}
            width = max(map(len, lines))
            self.invocation.say("\n".join(f"  {name:<{width}}  {what}" for name, what in lines.items()))
        elif command == "/reset":
            self.reset()
        elif command == "/history":
            self.show_history()
        else:
            self.invocation.say(f"Unknown command {command}; nothing was sent. /help lists the commands "
                                "(start a question with // to send it with a /).")

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
