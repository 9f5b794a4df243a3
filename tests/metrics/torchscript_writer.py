"""A pure-Python writer of TorchScript-format archives (what ``torch.jit.save`` writes), for test detectors.

The archive holds ``<root>/data.pkl``: the module tree as objects of ``__torch__.*`` classes built with
NEWOBJ + BUILD from their attribute dicts, tensors as ``torch._utils._rebuild_tensor_v2`` of persistent
storages; ``<root>/data/<key>``: the raw little-endian storages; plus ``version``, ``byteorder``,
``constants.pkl`` and a placeholder ``code/`` file. This is the layout torch 2.x writes (checked once
against ``torch.jit.save`` output); the reader must not need anything else.
"""

import io
import pickle
import types
import zipfile
from collections import OrderedDict

import numpy as np


class FloatStorage:
    """Pickled as the global ``torch.FloatStorage``."""


def rebuild_tensor_v2():
    """Pickled as the global ``torch._utils._rebuild_tensor_v2``."""


class _Storage:
    def __init__(self, key: str, array: np.ndarray):
        self.key, self.array = key, array


class _TorchScriptPickler(pickle._Pickler):
    dispatch = {**pickle._Pickler.dispatch, types.FunctionType: lambda self, obj: self.save_global(obj)}

    def __init__(self, file, names: dict):
        super().__init__(file, protocol=2)
        self.names = names  # object id -> "module\nname"
        self.storages: list[_Storage] = []

    def save_global(self, obj, name=None):
        if id(obj) in self.names:
            self.write(pickle.GLOBAL + self.names[id(obj)].encode() + b"\n")
            self.memoize(obj)
        else:
            super().save_global(obj, name)

    def persistent_id(self, obj):
        if isinstance(obj, _Storage):
            return ("storage", FloatStorage, obj.key, "cpu", obj.array.size)
        return None

    def reducer_override(self, obj):
        if isinstance(obj, np.ndarray):
            storage = _Storage(str(len(self.storages)), np.ascontiguousarray(obj, np.float32))
            self.storages.append(storage)
            stride = tuple(s // 4 for s in storage.array.strides)
            return rebuild_tensor_v2, (storage, 0, obj.shape, stride, False, OrderedDict())
        return NotImplemented


def write_torchscript(path, weights: dict, root: str = "archive") -> None:
    """Writes ``weights`` ({"a.b.weight": float array}) as a TorchScript archive whose module tree follows the
    dotted names (module ``a`` with submodule ``b``...), each module of its own ``__torch__`` class."""
    names = {id(FloatStorage): "torch\nFloatStorage", id(rebuild_tensor_v2): "torch._utils\n_rebuild_tensor_v2"}
    classes: dict = {}

    def module(prefix: str):
        cls = classes.get(prefix)
        if cls is None:
            cls = classes[prefix] = type(f"M{len(classes)}", (), {})
            names[id(cls)] = f"__torch__\n{'Top' if not prefix else prefix.replace('.', '_')}"
        obj = cls()
        obj.training = False
        return obj

    top = module("")
    for name, value in weights.items():
        node, parts = top, name.split(".")
        for i, part in enumerate(parts[:-1]):
            if part not in vars(node):
                setattr(node, part, module(".".join(parts[: i + 1])))
            node = getattr(node, part)
        setattr(node, parts[-1], np.asarray(value, np.float32))
    buf = io.BytesIO()
    pickler = _TorchScriptPickler(buf, names)
    pickler.dump(top)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(f"{root}/data.pkl", buf.getvalue())
        for s in pickler.storages:
            z.writestr(f"{root}/data/{s.key}", s.array.astype("<f4").tobytes())
        z.writestr(f"{root}/code/__torch__.py", "# TorchScript source is not read\n")
        z.writestr(f"{root}/constants.pkl", pickle.dumps((), protocol=2))
        z.writestr(f"{root}/version", "3\n")
        z.writestr(f"{root}/byteorder", "little")
