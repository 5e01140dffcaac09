"""Container images: which pods are MariaDB pods, and whether the local server can stand in.

Only one engine version runs here (Debian's mariadbd). A pod's image tag says which version
the pod expects; the test bed refuses a tag whose major.minor differs from the local server's
rather than silently running another version:

- ``10.11``, ``10.11.19``, ``10.11-jammy``, ``10.11.19-ubi9``: major.minor 10.11 (the patch
  level and the flavour are ignored);
- ``10``: the newest 10.x, that is 10.11; ``11``: the newest 11.x, never 10.11;
- no tag, ``latest``, ``lts`` and other non-numeric tags, or a digest without a tag: not a
  pinned version; accepted (the pod gets a Normal Event saying what runs instead).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MARIADB_REPOSITORY = "mariadb"
# The newest minor of each major series that has ended (a tag of only the major means this).
LAST_MINOR_OF_MAJOR = {5: 5, 10: 11}


@dataclass(frozen=True)
class ImageRef:
    repository: str
    tag: str | None
    digest: str | None

    @property
    def basename(self) -> str:
        return self.repository.rsplit("/", 1)[-1]


def parse_image(image: str) -> ImageRef:
    """``registry:5000/library/mariadb:10.11@sha256:...`` -> repository, tag, digest."""
    name, _, digest = image.partition("@")
    repository, tag = name, None
    match = re.fullmatch(r"(.*):([^:/]+)", name)
    if match:
        repository, tag = match.groups()
    return ImageRef(repository=repository, tag=tag, digest=digest or None)


def is_mariadb_image(image: str) -> bool:
    return parse_image(image).basename == MARIADB_REPOSITORY


def major_minor(version: str) -> tuple[int, int | None] | None:
    """``"10.11.19-MariaDB"`` -> (10, 11); ``"10"`` -> (10, None); ``"latest"`` -> None."""
    match = re.match(r"(\d+)(?:\.(\d+))?", version)
    if not match:
        return None
    return int(match.group(1)), int(match.group(2)) if match.group(2) else None


def version_mismatch(image: str, server_version: str) -> str | None:
    """Why the local server cannot stand in for `image`, or None when it can."""
    ref = parse_image(image)
    wanted = major_minor(ref.tag) if ref.tag else None
    local = major_minor(server_version)
    if wanted is None or local is None:
        return None
    major, minor = wanted
    if minor is None:
        minor = LAST_MINOR_OF_MAJOR.get(major)
        if minor is None:
            return f"image {image} needs the newest MariaDB {major}.x; this test bed runs {server_version}"
    if (major, minor) != local:
        return f"image {image} needs MariaDB {major}.{minor}; this test bed runs {server_version}"
    return None


def unpinned(image: str) -> bool:
    """True when the image's tag names no version (latest, lts, none, digest only)."""
    ref = parse_image(image)
    return ref.tag is None or major_minor(ref.tag) is None
