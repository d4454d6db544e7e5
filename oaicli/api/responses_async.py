"""One POST /responses on serve's event loop (api/async_client.py): the same request, event reading and
resume after a drop as api/responses_wire.ResponsesRequester, awaited. The rules are api/responses.py's."""

import json

import httpx

from oaicli.api import responses as r
from oaicli.api.sse import SSEParser


class AsyncResponsesRequester:
    def __init__(self, client, notice=None):
        """`client`: an AsyncApiClient."""
        self.client = client
        self.notice = notice or (lambda text: None)

    async def __call__(self, body: dict, on_happening=None) -> dict:
        """The final response object; each happening goes to `on_happening` as it arrives."""
        on_happening = on_happening or (lambda happening: None)
        if not body.get("stream"):
            return await self.client.post_json("/responses", body)
        stream = r.ResponseStream()
        await self._read("POST", "/responses", body, None, stream, on_happening)
        for path, params in r.resumes(stream, self.notice):
            await self._read("GET", path, None, params, stream, on_happening)
        return r.final_response(stream.outcome)

    async def _read(self, method: str, path: str, body, params, stream: r.ResponseStream, on_happening) -> None:
        """Feed one HTTP answer's events to `stream`; a connection that breaks just ends the read."""
        async with self.client.open(method, path, body, params) as response:
            try:
                if "text/event-stream" not in response.headers.get("content-type", ""):
                    whole = json.loads(await response.aread() or b"{}")  # a server that ignored stream=true
                    _hand(r.feed_whole(stream, whole), on_happening)
                    return
                parser = SSEParser()
                async for chunk in response.aiter_bytes():
                    for event in parser.feed(chunk):
                        _hand(r.feed_data(stream, event.data, event.event)[1], on_happening)
                for event in parser.close():
                    _hand(r.feed_data(stream, event.data, event.event)[1], on_happening)
            except httpx.TransportError:
                return


def _hand(happenings: list, on_happening) -> None:
    for happening in happenings:
        on_happening(happening)
