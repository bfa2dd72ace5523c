"""An offload folder, or one recording, -> the inputs of one drive and their fingerprint.

An offload folder holds recordings (``.mcap`` files, ROS 1 ``.bag`` files, ROS 2 bag
folders), side-car videos (``.h264``, ``.h265``, ``.mp4``) and optionally ``drive.json``
(device identity, and the topic of each video). Sub-folders are searched too; a folder
with a ``metadata.yaml`` or ``.db3`` files is a ROS 2 bag and counts as one recording.
Hidden files and folders (``.name``) are ignored.

The fingerprint identifies the inputs by content, so that re-ingesting the same offload is
a no-op whatever its path; it covers every input file, ``drive.json`` included.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any

from drivecat.files import sha256_file
from drivecat.ingest.errors import IngestError
from drivecat.ingest.readers import is_bag_folder, recording_suffixes

DRIVE_JSON = "drive.json"
VIDEO_SUFFIXES = frozenset({".h264", ".h265", ".mp4"})
_IDENTITY_KEYS = ("drive_id", "device_id", "device_version", "vehicle_id", "operator")


@dataclass(frozen=True)
class VideoInput:
    """A side-car video file, the topic its frames go to, and the topic that carries one
    timestamp per frame."""

    file: Path
    topic: str
    timestamps_topic: str


@dataclass(frozen=True)
class DriveInputs:
    """Everything one drive is ingested from. Paths are ``root`` joined with where the file
    lies under it; ``input_hashes`` keys are POSIX paths relative to ``root``."""

    root: Path  # the offload folder (or the recording's parent for a single recording)
    recordings: tuple[Path, ...]  # .mcap files, .bag files, ROS 2 bag folders, sorted
    videos: tuple[VideoInput, ...]  # side-car videos, sorted by file
    drive_json: Mapping[str, Any]  # parsed drive.json ({} if absent)
    fingerprint: str  # sha256 hex over (relative name, size, sha256) of every input file
    input_hashes: Mapping[str, str]  # relative path -> sha256 hex of each input file
    # files with a recording's or a video's name that are not regular files (a FIFO, a
    # socket, a dangling link): left out, one line each, since reading them could hang
    skipped: tuple[str, ...] = ()


def find_inputs(path: Path, *, hash_files: bool = True) -> DriveInputs:
    """Find a drive's inputs in an offload folder, or take one recording (a ``.mcap`` or
    ``.bag`` file, or a ROS 2 bag folder) as a drive of its own.

    For a single recording, ``root`` is its parent and a ``drive.json`` there still gives
    the device identity, but no side-car video is picked up. Side-car videos that
    ``drive.json`` does not list go to topic ``/<file stem>``, with frame times on
    ``<topic>/frame_times``.

    Raises IngestError naming the file when the path does not exist, holds no recording,
    or ``drive.json`` is invalid (not a JSON object, wrong types, a listed video missing,
    two videos on one topic).
    """
    path = Path(path)
    if not path.exists():
        raise IngestError(f"{path}: no such file or folder")
    skipped: list[Path] = []
    if not path.is_dir() and not path.is_file():
        raise IngestError(f"{path}: not a regular file (a FIFO, socket or device is never read)")
    if _is_recording(path):
        root = path.parent
        recordings: list[Path] = [path]
        video_files: list[Path] = []
    elif path.is_dir():
        root = path
        recordings, video_files, skipped = _walk(root)
        if not recordings:
            names = ", ".join(p.name for p in skipped)
            also = f"; skipped, not regular files: {names}" if skipped else ""
            raise IngestError(
                f"{root}: no recordings found (.mcap, .bag or ROS 2 bag folder){also}"
            )
    else:
        raise IngestError(f"{path}: not a recording (.mcap, .bag or ROS 2 bag folder)")
    json_path = root / DRIVE_JSON
    drive_json = _load_drive_json(json_path) if json_path.is_file() else {}
    videos = _map_videos(root, video_files, drive_json) if path.is_dir() and root == path else ()
    files = [f for r in recordings for f in _files_of(r)] + [v.file for v in videos]
    if drive_json:
        files.append(json_path)
    found = DriveInputs(
        root=root,
        recordings=tuple(sorted(recordings)),
        videos=videos,
        drive_json=drive_json,
        fingerprint="",
        input_hashes={_relative(f, root): "" for f in sorted(set(files))},
        skipped=tuple(f"{p}: skipped, not a regular file" for p in skipped),
    )
    return hash_inputs(found) if hash_files else found


def hash_inputs(inputs: DriveInputs) -> DriveInputs:
    """``inputs`` with the sha256 of every file and the fingerprint filled in.

    ``find_inputs(..., hash_files=False)`` and this let the caller hash while it works.
    """
    hashes = {rel: _sha256(inputs.root / rel) for rel in inputs.input_hashes}
    return replace(inputs, fingerprint=_fingerprint(inputs.root, hashes), input_hashes=hashes)


def part_of(inputs: DriveInputs, recordings: Iterable[Path], *, videos: bool) -> DriveInputs:
    """The inputs of one drive made of some of ``inputs``' recordings (its ``drive.json``
    too, and its side-car videos if ``videos``), not hashed yet (see ``hash_inputs``)."""
    chosen = tuple(sorted(recordings))
    kept = inputs.videos if videos else ()
    files = [f for r in chosen for f in _files_of(r)] + [v.file for v in kept]
    json_path = inputs.root / DRIVE_JSON
    if inputs.drive_json and json_path.is_file():
        files.append(json_path)
    return replace(
        inputs,
        recordings=chosen,
        videos=kept,
        fingerprint="",
        input_hashes={_relative(f, inputs.root): "" for f in sorted(set(files))},
    )


def _sha256(path: Path) -> str:
    try:
        return sha256_file(path)
    except OSError as err:
        raise IngestError(f"{path}: cannot read: {err.strerror}") from None


def _is_recording(path: Path) -> bool:
    if path.is_dir():
        return is_bag_folder(path)
    return path.suffix.lower() in recording_suffixes()


def _walk(root: Path) -> tuple[list[Path], list[Path], list[Path]]:
    """Recordings, side-car videos, and files named like either that are not regular
    files (skipped), under ``root``; ROS 2 bag folders are not entered."""
    suffixes = recording_suffixes()
    recordings: list[Path] = []
    videos: list[Path] = []
    skipped: list[Path] = []
    for folder, dirs, names in os.walk(root):
        base = Path(folder)
        keep = []
        for d in sorted(dirs):
            if d.startswith("."):
                continue
            if _is_recording(base / d):
                recordings.append(base / d)
            else:
                keep.append(d)
        dirs[:] = keep
        for name in sorted(names):
            suffix = Path(name).suffix.lower()
            if name.startswith("."):
                continue
            if (suffix in suffixes or suffix in VIDEO_SUFFIXES) and not (base / name).is_file():
                skipped.append(base / name)
            elif suffix in suffixes:
                recordings.append(base / name)
            elif suffix in VIDEO_SUFFIXES:
                videos.append(base / name)
    return sorted(recordings), sorted(videos), sorted(skipped)


def _files_of(recording: Path) -> list[Path]:
    if not recording.is_dir():
        return [recording]
    return sorted(p for p in recording.rglob("*") if p.is_file())


def _load_drive_json(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise IngestError(f"{path}: invalid drive.json: {err}") from None
    except RecursionError:  # arrays or objects nested thousands deep
        raise IngestError(f"{path}: invalid drive.json: nested too deeply") from None
    if not isinstance(doc, dict):
        raise IngestError(f"{path}: invalid drive.json: not a JSON object")
    for key in _IDENTITY_KEYS:
        if doc.get(key) is not None and not isinstance(doc[key], str):
            raise IngestError(f"{path}: invalid drive.json: {key} must be a string")
    videos = doc.get("videos", [])
    if not isinstance(videos, list) or not all(isinstance(v, dict) for v in videos):
        raise IngestError(f"{path}: invalid drive.json: videos must be a list of objects")
    for v in videos:
        for key in ("file", "topic", "timestamps_topic"):
            value = v.get(key)
            if (key == "file" or value is not None) and not (isinstance(value, str) and value):
                raise IngestError(f"{path}: invalid drive.json: a video's {key} must be a string")
    return doc


def _map_videos(
    root: Path, found: Iterable[Path], drive_json: Mapping[str, Any]
) -> tuple[VideoInput, ...]:
    """Every listed video, then every found one not listed, each with its topics."""
    json_path = root / DRIVE_JSON
    by_file: dict[Path, VideoInput] = {}
    for entry in drive_json.get("videos", []):
        rel = PurePosixPath(entry["file"])
        file = root.joinpath(*rel.parts)
        if rel.is_absolute() or ".." in rel.parts or not file.is_file():
            raise IngestError(f"{json_path}: video {entry['file']} is not a file in {root}")
        by_file[file] = _video(file, entry.get("topic"), entry.get("timestamps_topic"))
    for file in found:
        if file not in by_file:
            by_file[file] = _video(file, None, None)
    seen: dict[str, Path] = {}
    for video in by_file.values():
        if video.topic in seen:
            names = f"{seen[video.topic].name} and {video.file.name}"
            raise IngestError(f"{json_path}: {names} both map to topic {video.topic}")
        seen[video.topic] = video.file
    return tuple(sorted(by_file.values(), key=lambda v: v.file))


def _video(file: Path, topic: str | None, timestamps_topic: str | None) -> VideoInput:
    topic = topic or f"/{file.stem}"
    return VideoInput(file, topic, timestamps_topic or f"{topic}/frame_times")


def _relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _fingerprint(root: Path, hashes: Mapping[str, str]) -> str:
    digest = hashlib.sha256()
    for rel in sorted(hashes):
        size = (root / rel).stat().st_size
        digest.update(f"{rel}\0{size}\0{hashes[rel]}\n".encode())
    return digest.hexdigest()


__all__ = ["DRIVE_JSON", "DriveInputs", "VideoInput", "find_inputs", "part_of"]
