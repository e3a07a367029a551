"""A small X12 segment tokenizer for what the libraries do not read.

``oxedi`` (835) and ``x12sdk`` (837) both refuse input that does not start with an ISA
interchange header, and neither reads 999 or 277CA acknowledgements. This module splits any
X12 text into segments and elements, with the delimiters taken from the ISA header when there
is one and guessed from the first ``ST`` segment when there is not. It also sniffs the
transaction type of a file (835, 837P, 837I, 999, 277CA) so an import can route it.

It never raises anything but ``X12Error`` (a ``LedgerError`` naming field and rule) and
never puts element values (which may hold PHI) in its messages.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from ledger.domain.errors import InvalidValue


class X12Error(InvalidValue):
    """The file is not readable X12: names the segment position and the rule."""


@dataclass(frozen=True, slots=True)
class Delimiters:
    element: str = "*"
    component: str = ":"
    segment: str = "~"
    repetition: str = "^"


@dataclass(frozen=True, slots=True)
class Segment:
    """One segment: its id, its elements (``elements[0]`` is XX01) and 1-based position."""

    id: str
    elements: tuple[str, ...]
    position: int

    def get(self, n: int) -> str:
        """Element XXnn (1-based), '' when absent."""
        return self.elements[n - 1] if 0 < n <= len(self.elements) else ""


@dataclass(slots=True)
class Tokens:
    segments: list[Segment]
    delimiters: Delimiters
    has_isa: bool
    issues: list[tuple[str, str, int]] = field(default_factory=list)  # (rule, message, pos)


_ALT_COMPONENT = (">", ":", "^", "|", "\\")


def file_hash(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _decode(data: bytes | str) -> str:
    if isinstance(data, str):
        return data
    if not data:
        raise X12Error("file", "x12.empty", "file: the file is empty")
    if b"\x00" in data[:4096]:
        raise X12Error("file", "x12.not_text", "file: binary content, not an X12 file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def tokenize(data: bytes | str) -> Tokens:
    """Split X12 text into segments. Line breaks around segment terminators are trivia."""
    text = _decode(data).lstrip("\ufeff \t\r\n")
    if not text:
        raise X12Error("file", "x12.empty", "file: the file is empty")
    has_isa = text.startswith("ISA")
    if has_isa:
        if len(text) < 106:
            raise X12Error("ISA", "x12.isa_length",
                           "ISA: the interchange header is shorter than its fixed 106 "
                           "characters")
        element = text[3]
        isa_fields = text[:106].split(element)
        if len(isa_fields) != 17:
            raise X12Error("ISA", "x12.isa_format",
                           "ISA: the interchange header does not have 16 fixed-width elements")
        component = isa_fields[16][0:1]
        terminator = text[105]
        repetition = isa_fields[11] if isa_fields[12].startswith("005") else "^"
        if terminator in "\r\n":
            terminator = "\n"
        delims = Delimiters(element, component, terminator, repetition or "^")
    else:
        start = text.find("ST")
        if start != 0 or len(text) < 4 or text[2].isalnum():
            raise X12Error("file", "x12.not_x12",
                           "file: not an X12 file (it starts with neither ISA nor ST)")
        element = text[2]
        # the terminator is what ends the ST segment: '~' usually, else a line break
        end = len(text)
        for ch in ("~", "\n", "'"):
            i = text.find(ch)
            if 0 < i < end:
                end = i
        terminator = text[end] if end < len(text) else "~"
        delims = Delimiters(element, ":", terminator, "^")
    raw_segments = text.split(delims.segment)
    segments: list[Segment] = []
    issues: list[tuple[str, str, int]] = []
    for raw in raw_segments:
        body = raw.strip("\r\n \t")
        if not body:
            continue
        parts = body.split(delims.element)
        sid = parts[0]
        pos = len(segments) + 1
        if not (2 <= len(sid) <= 3) or not sid.isalnum() or not sid[0].isalpha():
            issues.append(("x12.segment_id", f"segment {pos}: not a valid segment id", pos))
        segments.append(Segment(sid, tuple(parts[1:]), pos))
    if not segments:
        raise X12Error("file", "x12.not_x12", "file: no segments found")
    return Tokens(segments, delims, has_isa, issues)


def components(value: str, delims: Delimiters) -> list[str]:
    """Split a composite element. Some senders use another component separator than the one
    declared in ISA16 (``HC>99214`` with ISA16 ':'): when the declared one does not occur and
    the value looks like ``QQ?CODE`` with another separator at position 2, split on that."""
    if delims.component in value:
        return value.split(delims.component)
    if len(value) > 3 and value[2] in _ALT_COMPONENT and value[:2].isalnum():
        return value.split(value[2])
    if len(value) > 3 and value[3] in _ALT_COMPONENT and value[:3].isalnum():
        return value.split(value[3])
    return [value]


@dataclass(frozen=True, slots=True)
class Sniff:
    kind: str  # 835 | 837P | 837I | 999 | 277CA | unknown
    version: str  # GS08 or ST03 implementation guide


def sniff(tokens: Tokens) -> Sniff:
    gs08 = ""
    for seg in tokens.segments:
        if seg.id == "GS":
            gs08 = seg.get(8)
        elif seg.id == "ST":
            st01, st03 = seg.get(1), seg.get(3)
            version = st03 or gs08
            if st01 == "835":
                return Sniff("835", version)
            if st01 == "837":
                if "X223" in version:
                    return Sniff("837I", version)
                if "X222" in version:
                    return Sniff("837P", version)
                return Sniff("837P" if _has_segment(tokens, "SV1") else "837I", version)
            if st01 == "999":
                return Sniff("999", version)
            if st01 == "277":
                return Sniff("277CA", version)
            return Sniff("unknown", version)
    return Sniff("unknown", gs08)


def _has_segment(tokens: Tokens, sid: str) -> bool:
    return any(s.id == sid for s in tokens.segments)
