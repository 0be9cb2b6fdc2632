"""Ground truth for test/processors/resize.test.ts: PIL BILINEAR resizes of seeded random uint8 images.

Run with Debian's Pillow 9.4.0 (the fixtures' version): /usr/bin/python3 make_pil_bilinear_cases.py
Writes pil_bilinear_cases.safetensors: case<i>.in [h, w, 3] U8 and case<i>.out [h2, w2, 3] U8.
"""
import json
import struct

import numpy as np
import PIL
from PIL import Image

assert PIL.__version__ == "9.4.0", PIL.__version__
rng = np.random.default_rng(20250221)
# (h, w) -> (h2, w2): up, down, mixed, extreme aspect ratios, identity on one axis, 1-pixel sides
sizes = [
    ((1, 1), (3, 5)),
    ((2, 3), (7, 4)),
    ((5, 7), (5, 13)),
    ((37, 23), (16, 16)),
    ((64, 64), (17, 9)),
    ((1, 97), (16, 32)),
    ((97, 1), (48, 16)),
    ((300, 7), (16, 1)),
    ((9, 200), (1, 33)),
    ((45, 61), (45, 61)),
    ((33, 50), (33, 21)),
    ((120, 90), (77, 130)),
]
tensors = {}
for i, ((h, w), (h2, w2)) in enumerate(sizes):
    if i % 3 == 0:
        a = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    else:  # smooth-ish content with edges, closer to photos
        y, x = np.mgrid[0:h, 0:w]
        base = (np.sin(x / 3.0 + i) * 80 + np.cos(y / 5.0) * 60 + 128)[..., None]
        a = np.clip(base + rng.normal(0, 25, size=(h, w, 3)), 0, 255).astype(np.uint8)
    out = np.asarray(Image.fromarray(a, "RGB").resize((w2, h2), Image.BILINEAR))
    tensors[f"case{i}.in"] = a
    tensors[f"case{i}.out"] = out

header, blobs, off = {}, [], 0
for k, v in tensors.items():
    b = v.tobytes()
    header[k] = {"dtype": "U8", "shape": list(v.shape), "data_offsets": [off, off + len(b)]}
    blobs.append(b)
    off += len(b)
header["__metadata__"] = {"generator": "make_pil_bilinear_cases.py", "pillow": PIL.__version__}
h = json.dumps(header).encode()
h += b" " * ((8 - len(h) % 8) % 8)
with open("pil_bilinear_cases.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
print(len(sizes), "cases,", off, "bytes")
