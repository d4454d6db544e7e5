"""An incremental parser for server-sent events: feed it bytes as they arrive, get whole events back."""

from dataclasses import dataclass


@dataclass
class Event:
    data: str
    event: str | None = None
    id: str | None = None


class SSEParser:
    """Follows the WHATWG rules: CR, LF or CRLF line ends, `:` comments, multi-line `data`."""

    def __init__(self):
        self._pending = b""
        self._data: list[str] = []
        self._event: str | None = None
        self._id: str | None = None

    def feed(self, chunk: bytes) -> list[Event]:
        buffer = self._pending + chunk
        events = []
        start = 0
        while True:
            end, width = _line_end(buffer, start)
            if end < 0:
                break
            event = self._line(buffer[start:end].decode("utf-8", errors="replace"))
            if event:
                events.append(event)
            start = end + width
        self._pending = buffer[start:]
        return events

    def close(self) -> list[Event]:
        """End of input: a last line or event without its terminator still counts (`data: [DONE]` at EOF)."""
        events = self.feed(b"\n") if self._pending else []
        last = self._dispatch()
        return events + [last] if last else events

    def _line(self, line: str) -> Event | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            self._id = value
        return None

    def _dispatch(self) -> Event | None:
        if not self._data:
            self._event = None
            return None
        event = Event("\n".join(self._data), self._event, self._id)
        self._data, self._event = [], None
        return event


def _line_end(buffer: bytes, start: int) -> tuple[int, int]:
    """Index and width of the next line end, or -1 when the line may still be incomplete."""
    lf = buffer.find(b"\n", start)
    cr = buffer.find(b"\r", start, lf if lf >= 0 else len(buffer))
    if cr >= 0:
        if cr + 1 == len(buffer):
            return -1, 0  # a CR at the end may be the first half of a CRLF
        return cr, 2 if buffer[cr + 1:cr + 2] == b"\n" else 1
    return (lf, 1) if lf >= 0 else (-1, 0)
