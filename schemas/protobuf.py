"""Protobuf schema helpers shared by the writers: the self-contained FileDescriptorSet."""

from __future__ import annotations

from google.protobuf.descriptor import Descriptor, FileDescriptor
from google.protobuf.descriptor_pb2 import FileDescriptorProto, FileDescriptorSet


def file_descriptor_set(descriptor: Descriptor) -> bytes:
    """A serialized FileDescriptorSet holding the message's file and all its dependencies.

    This is what an MCAP ``protobuf`` schema record carries, so the file can be decoded
    without the .proto sources. Dependencies come before the files that import them.
    """
    ordered: list[FileDescriptor] = []
    seen: set[str] = set()

    def visit(fd: FileDescriptor) -> None:
        if fd.name in seen:
            return
        seen.add(fd.name)
        for dep in fd.dependencies:
            visit(dep)
        ordered.append(fd)

    visit(descriptor.file)
    fds = FileDescriptorSet()
    for fd in ordered:
        proto = FileDescriptorProto()
        fd.CopyToProto(proto)
        fds.file.append(proto)
    return fds.SerializeToString()
