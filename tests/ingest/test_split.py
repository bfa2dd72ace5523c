"""Topic slugs are safe folder names and reversible; windows follow the clock."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from drivecat.naming import DRIVE_OWN_NAMES, time_label, topic_from_slug, topic_slug

# A topic is any text: ROS-style "/a/b", bare names, and names built to collide with the
# drive's own files or to climb out of its folder.
_topics = st.one_of(
    st.text(min_size=0, max_size=80),
    st.builds("/".join, st.lists(st.sampled_from(["", ".", "..", "a", "catalog", "%", "+"]))),
    st.sampled_from([*DRIVE_OWN_NAMES, ".", "..", "=", "%00", ".manifest.json.partial"]),
)


@given(_topics)
def test_slug_is_a_single_safe_name_and_reversible(topic: str) -> None:
    slug = topic_slug(topic)
    assert "/" not in slug and "\\" not in slug and "\x00" not in slug
    assert slug not in ("", ".", "..")
    # disjoint from the drive's own names and from hidden (temporary) names
    assert slug not in DRIVE_OWN_NAMES and not slug.startswith(".")
    assert slug[0] in "+="
    assert len(slug.encode()) <= 200
    if "~" not in slug:  # only very long topics are shortened, with a hash; the manifest maps them
        assert topic_from_slug(slug) == topic


def test_long_topics_are_shortened_distinctly() -> None:
    a, b = "/x" * 300 + "a", "/x" * 300 + "b"
    assert topic_slug(a) != topic_slug(b)
    assert len(topic_slug(a).encode()) <= 200


def test_path_traversal_topics_stay_inside() -> None:
    assert topic_slug("/../../etc") == "+..+..+etc"
    assert topic_slug("..") == "=.."
    assert topic_slug("/camera/front/video") == "+camera+front+video"  # as in older stores


def test_bare_topics_never_meet_the_drives_own_names() -> None:
    assert topic_slug("manifest.json") == "=manifest.json"
    assert topic_slug("catalog") == "=catalog"
    assert topic_slug("attachments") == "=attachments"
    assert topic_slug("") == "="
    assert topic_from_slug("%00") == ""  # an empty topic's slug in stores written before


def test_time_labels() -> None:
    assert time_label(1_781_544_600_000_000_000) == "20260615T173000Z"
    assert time_label(1_781_544_600_500_000_000) == "20260615T173000.500000000Z"
