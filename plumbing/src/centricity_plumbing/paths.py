"""Path segments that only match what they can name, so a literal path beside them is not theirs.

Starlette matches `{idea_id}` against any segment: `/ideas/search` then also matched the PATCH
route of `/ideas/{idea_id}`, and a 405 on it allowed PATCH. A segment typed `{idea_id:uuidtext}`
matches a UUID only, and hands it on as text.
"""

from __future__ import annotations

from starlette.convertors import Convertor, register_url_convertor

UUID_PATTERN = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
UUID_TEXT = "uuidtext"


class UuidText(Convertor[str]):
    regex = UUID_PATTERN

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor(UUID_TEXT, UuidText())
