"""Topic slugs are safe folder names and reversible; windows follow the clock."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from drivecat.naming import time_label, topic_from_slug, topic_slug


@given(st.text(min_size=0, max_size=80))
def test_slug_is_a_single_safe_name_and_reversible(topic: str) -> None:
    slug = topic_slug(topic)
    assert "/" not in slug and "\\" not in slug and "\x00" not in slug
    assert slug not in ("", ".", "..")
    assert len(slug.encode()) <= 200
    if "~" not in slug:  # only very long topics are shortened, with a hash; the manifest maps them
        assert topic_from_slug(slug) == topic


def test_long_topics_are_shortened_distinctly() -> None:
    a, b = "/x" * 300 + "a", "/x" * 300 + "b"
    assert topic_slug(a) != topic_slug(b)
    assert len(topic_slug(a).encode()) <= 200


def test_path_traversal_topics_stay_inside() -> None:
    assert topic_slug("/../../etc") == "+..+..+etc"
    assert topic_slug("..") == "%2E%2E"
    assert topic_slug("/camera/front/video") == "+camera+front+video"


def test_time_labels() -> None:
    assert time_label(1_781_544_600_000_000_000) == "20260615T173000Z"
    assert time_label(1_781_544_600_500_000_000) == "20260615T173000.500000000Z"
