"""Reads a PyTorch checkpoint without torch -- the zip format of `torch.save` since 1.6 or the
legacy format before it -- and writes its float tensors as little-endian f32: a text header line
per tensor `name dims...` then the data, in order.
Usage: python3 torch_weights.py IN OUT

Only plain data is unpickled: tensors, storages and ordered dicts; any other class is refused,
so a checkpoint cannot run code here."""
import pickle
import struct
import sys
import zipfile
from collections import OrderedDict

MAGIC = 0x1950A86A20F9469CFC6C
SIZES = {"FloatStorage": 4, "HalfStorage": 2, "DoubleStorage": 8, "LongStorage": 8, "IntStorage": 4}


class Storage:
    def __init__(self, kind, key, numel):
        self.kind, self.key, self.numel, self.data = kind, key, numel, None


class Tensor:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)


def rebuild_tensor(storage, offset, size, stride, *rest):
    return Tensor(storage, offset, size, stride)


class Plain(pickle.Unpickler):
    """The file's header and trailer hold only numbers, strings, lists and dicts."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"refusing {module}.{name}")


class Unpickler(pickle.Unpickler):
    def __init__(self, f, storages):
        super().__init__(f)
        self.storages = storages

    def find_class(self, module, name):
        if module == "torch._utils" and name in ("_rebuild_tensor", "_rebuild_tensor_v2"):
            return rebuild_tensor
        if module == "torch" and name in SIZES:
            return name
        if module == "collections" and name == "OrderedDict":
            return OrderedDict
        raise pickle.UnpicklingError(f"refusing {module}.{name}")

    def persistent_load(self, saved_id):
        kind, storage_type, key, location, numel = saved_id[:5]
        if kind != "storage":
            raise pickle.UnpicklingError(f"unexpected persistent id {kind}")
        if key not in self.storages:
            self.storages[key] = Storage(storage_type, key, numel)
        return self.storages[key]


class ZipUnpickler(Unpickler):
    """`data.pkl` of a zip checkpoint: storage `key`'s bytes are the member `data/<key>`."""

    def __init__(self, f, storages, archive, prefix):
        super().__init__(f, storages)
        self.archive, self.prefix = archive, prefix

    def persistent_load(self, saved_id):
        s = super().persistent_load(saved_id)
        if s.data is None:
            s.data = self.archive.read(f"{self.prefix}data/{s.key}")
        return s


def read_zip(path):
    with zipfile.ZipFile(path) as z:
        pkl = [n for n in z.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pkl) != 1:
            raise SystemExit("not a PyTorch checkpoint (no data.pkl)")
        prefix = pkl[0][: -len("data.pkl")]
        with z.open(pkl[0]) as f:
            return ZipUnpickler(f, {}, z, prefix).load()


def read_legacy(path):
    with open(path, "rb") as f:
        if Plain(f).load() != MAGIC:
            raise SystemExit("not a legacy PyTorch file")
        Plain(f).load()  # protocol version
        Plain(f).load()  # system info
        storages = {}
        state = Unpickler(f, storages).load()
        keys = Plain(f).load()
        for key in keys:
            s = storages[key]
            (n,) = struct.unpack("<q", f.read(8))
            s.data = f.read(n * SIZES[s.kind])
    return state


def main(path, out):
    state = read_zip(path) if zipfile.is_zipfile(path) else read_legacy(path)
    with open(out, "wb") as o:
        for name, t in state.items():
            if not isinstance(t, Tensor) or t.storage.kind not in ("FloatStorage", "HalfStorage"):
                continue
            count = 1
            for d in t.size:
                count *= d
            # Only contiguous tensors (what a state dict holds).
            expect = []
            acc = 1
            for d in reversed(t.size):
                expect.insert(0, acc)
                acc *= d
            if count > 1 and list(t.stride) != expect:
                raise SystemExit(f"{name} is not contiguous")
            size = SIZES[t.storage.kind]
            raw = t.storage.data[t.offset * size:(t.offset + count) * size]
            if t.storage.kind == "HalfStorage":
                raw = struct.pack(f"<{count}f", *struct.unpack(f"<{count}e", raw))
            o.write((name + " " + " ".join(str(d) for d in t.size) + "\n").encode())
            o.write(raw)


main(sys.argv[1], sys.argv[2])
