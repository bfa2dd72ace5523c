"""Synthetic drives with exact ground truth, for drivecat's tests, benchmarks and quick start.

``python -m sample_logs.generate --out DIR`` (or ``sample_logs.generate.generate``) writes
an offload folder as a car's recorder would: rotating MCAP recordings (protobuf and JSON
topics: front camera H.264, lidar, GPS, detections, vehicle state, IMU), optionally a
side-car rear camera, plus ``truth.json`` (tags per second and per segment, message counts,
video frames, all by the rules of docs/tags.md) and ``intersections.geojson``.

Modules: ``world`` (the simulated city, ego car, road users, weather, clock), ``sensors``
(message timing and contents), ``camera`` and ``lidar`` (rendering and encoding),
``generate`` (recording, variants, CLI) and ``truth`` (ground truth from written messages).

``sample_logs/tiny/`` is a committed 20 s drive with the side-car rear camera (about
4.6 MB). Regenerate it, from the repository root, with::

    rm -rf sample_logs/tiny && python -m sample_logs.generate --out sample_logs/tiny \\
        --seconds 20 --seed 5 --variant sidecar --lidar-points 1000 --crf 32

The same machine always gives the same bytes. Video bytes also depend on libx264's build and
thread count (by default it follows the CPU count), so another machine may write different
H.264 bytes, and so different file sizes and digests; tags, counts and times do not change.
"""
