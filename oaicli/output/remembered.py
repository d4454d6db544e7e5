"""Facts oaicli learns about a server once (which fine-tuning API it offers, whether it answers
/responses), remembered per base URL in the oaicli home so later runs skip the probe."""

import json

from oaicli.core import settings
from oaicli.core.errors import OaicliError
from oaicli.output.files import atomic_writer


class PerServer:
    """One JSON file in the home mapping base URLs to what was learnt about them."""

    def __init__(self, file_name: str):
        self.file_name = file_name

    def get(self, base_url: str) -> str | None:
        return self._known().get(base_url.rstrip("/"))

    def set(self, base_url: str, value: str) -> None:
        known = {**self._known(), base_url.rstrip("/"): value}
        try:
            settings.ensure_home()
            with atomic_writer(settings.home_dir() / self.file_name, "w") as sink:
                sink.write(json.dumps(known, indent=2) + "\n")
        except (OSError, OaicliError):
            pass  # a read-only home only costs the probe again next time

    def _known(self) -> dict:
        try:
            known = json.loads((settings.home_dir() / self.file_name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return known if isinstance(known, dict) else {}
