"""The organisation's tags (themes) for open answers: a name and an optional keyboard key
1–9, each unique in the organisation. Changes are audited in the same transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ivr.accounts import audit
from ivr.accounts.audit import Actor, NotFound
from ivr.store.work_models import Tag, TranscriptTag

MAX_NAME = 60


@dataclass(frozen=True)
class TagView:
    id: int
    name: str
    key: int | None
    uses: int = 0


class TagInvalid(ValueError):
    """A tag that cannot be saved: ``field`` (name or key) and a ``code``: name_missing,
    name_long, name_taken, key_invalid, key_taken."""

    def __init__(self, field: str, code: str) -> None:
        super().__init__(f"{field}: {code}")
        self.field = field
        self.code = code


def parse_key(text: str | None) -> int | None:
    """A key from a form: "" → None, "1"–"9" → the number; else TagInvalid."""
    text = (text or "").strip()
    if not text:
        return None
    if len(text) == 1 and text in "123456789":
        return int(text)
    raise TagInvalid("key", "key_invalid")


def of_org(s: Session, org_id: str, *, uses: bool = False) -> list[TagView]:
    """The organisation's tags: those with a key by key, then the rest by name."""
    count = (
        sa.select(sa.func.count())
        .where(TranscriptTag.tag_id == Tag.id)
        .correlate(Tag)
        .scalar_subquery()
        if uses
        else sa.literal(0)
    )
    rows = s.execute(
        sa.select(Tag.id, Tag.name, Tag.key, count)
        .where(Tag.org_id == org_id)
        .order_by(Tag.key.is_(None), Tag.key, Tag.name)
    )
    return [TagView(i, n, k, int(u or 0)) for i, n, k, u in rows]


def find(s: Session, org_id: str, tag_id: int) -> Tag:
    tag = s.scalar(sa.select(Tag).where(Tag.id == tag_id, Tag.org_id == org_id))
    if tag is None:
        raise NotFound(f"no tag {tag_id}")
    return tag


def _check(s: Session, org_id: str, name: str, key: int | None, tag_id: int | None) -> str:
    name = " ".join(name.split())
    if not name:
        raise TagInvalid("name", "name_missing")
    if len(name) > MAX_NAME:
        raise TagInvalid("name", "name_long")
    others = sa.select(Tag).where(Tag.org_id == org_id)
    if tag_id is not None:
        others = others.where(Tag.id != tag_id)
    for other in s.scalars(others):
        if other.name.casefold() == name.casefold():
            raise TagInvalid("name", "name_taken")
        if key is not None and other.key == key:
            raise TagInvalid("key", "key_taken")
    return name


def add(s: Session, actor: Actor, org_id: str, name: str, key: int | None, *, at: datetime) -> Tag:
    name = _check(s, org_id, name, key, None)
    tag = Tag(org_id=org_id, name=name, key=key)
    s.add(tag)
    s.flush()
    audit.record(
        s, actor, "tag.add", at=at, target_type="tag", target_id=str(tag.id), name=name, key=key
    )
    return tag


def change(
    s: Session, actor: Actor, org_id: str, tag_id: int, name: str, key: int | None, *, at: datetime
) -> Tag:
    tag = find(s, org_id, tag_id)
    name = _check(s, org_id, name, key, tag_id)
    old = {"name": tag.name, "key": tag.key}
    tag.name, tag.key = name, key
    s.flush()
    audit.record(
        s, actor, "tag.change", at=at, target_type="tag", target_id=str(tag.id),
        old=old, new={"name": name, "key": key},
    )  # fmt: skip
    return tag


def delete(s: Session, actor: Actor, org_id: str, tag_id: int, *, at: datetime) -> str:
    tag = find(s, org_id, tag_id)
    name = tag.name
    s.execute(sa.delete(TranscriptTag).where(TranscriptTag.tag_id == tag_id))
    s.delete(tag)
    audit.record(s, actor, "tag.delete", at=at, target_type="tag", target_id=str(tag_id), name=name)
    return name
