#!/usr/bin/python3
"""A pass-through FUSE filesystem whose fsync can be made to fail, for tests of what the relay
does when its disk stops making writes durable (no device-mapper here, whose dm-error/dm-flakey
targets would be the usual tool).

Usage: faultyfs.py BACKING_DIR MOUNTPOINT CONTROL_FILE
Every operation goes to BACKING_DIR. While CONTROL_FILE exists, fsync and fdatasync fail with
EIO (as a dying disk or a lost network volume makes them fail); writes still reach the page
cache of BACKING_DIR, as they would on a real disk. Runs in the foreground until unmounted.
"""

import errno
import os
import sys

from fusepy import FUSE, FuseOSError, Operations


class Faulty(Operations):
    def __init__(self, root, control):
        self.root = root
        self.control = control

    def _path(self, path):
        return os.path.join(self.root, path.lstrip("/"))

    def _failing(self):
        return os.path.exists(self.control)

    def access(self, path, mode):
        if not os.access(self._path(path), mode):
            raise FuseOSError(errno.EACCES)

    def getattr(self, path, fh=None):
        st = os.lstat(self._path(path))
        keys = ("st_atime", "st_ctime", "st_gid", "st_mode", "st_mtime", "st_nlink",
                "st_size", "st_uid")
        return {k: getattr(st, k) for k in keys}

    def readdir(self, path, fh):
        return [".", ".."] + os.listdir(self._path(path))

    def mknod(self, path, mode, dev):
        # Unix sockets too (the relay's flush socket lives in its data directory).
        os.mknod(self._path(path), mode, dev)

    def mkdir(self, path, mode):
        os.mkdir(self._path(path), mode)

    def rmdir(self, path):
        os.rmdir(self._path(path))

    def unlink(self, path):
        os.unlink(self._path(path))

    def rename(self, old, new):
        os.rename(self._path(old), self._path(new))

    def link(self, target, name):
        os.link(self._path(name), self._path(target))

    def chmod(self, path, mode):
        os.chmod(self._path(path), mode)

    def truncate(self, path, length, fh=None):
        with open(self._path(path), "r+b") as f:
            f.truncate(length)

    def utimens(self, path, times=None):
        os.utime(self._path(path), times)

    def statfs(self, path):
        st = os.statvfs(self._path(path))
        keys = ("f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail", "f_ffree", "f_files",
                "f_flag", "f_frsize", "f_namemax")
        return {k: getattr(st, k) for k in keys}

    def open(self, path, flags):
        return os.open(self._path(path), flags)

    def create(self, path, mode, fi=None):
        return os.open(self._path(path), os.O_WRONLY | os.O_CREAT, mode)

    def read(self, path, size, offset, fh):
        return os.pread(fh, size, offset)

    def write(self, path, data, offset, fh):
        return os.pwrite(fh, data, offset)

    def flush(self, path, fh):
        return 0

    def release(self, path, fh):
        os.close(fh)

    def fsync(self, path, datasync, fh):
        if self._failing():
            raise FuseOSError(errno.EIO)
        os.fsync(fh)

    def fsyncdir(self, path, datasync, fh):
        if self._failing():
            raise FuseOSError(errno.EIO)
        return 0


if __name__ == "__main__":
    backing, mountpoint, control = sys.argv[1:4]
    FUSE(Faulty(os.path.abspath(backing), os.path.abspath(control)), mountpoint,
         foreground=True, nothreads=False, allow_other=False)
