"""Reference runs made by clipxai 0.1.0 at commit 329e96e, before the engine redesign (run format 1).

Kept as written then: the tests check that today's engine reproduces these arrays bit for bit on
CPU, and that format-1 runs still load, analyse, report and resume.
"""
import os, shutil, sys
os.environ["OMP_NUM_THREADS"] = "1"
import torch
torch.set_num_threads(1)
import clipxai
from clipxai.models import load_clip
from clipxai.ascent.recorder import Callback

out = sys.argv[1]
shutil.rmtree(out, ignore_errors=True)
common = dict(quiet=True, out=out)
# 1. default preset, random tiny CLIP, two batched seeds
clipxai.ascend("a red heart|text:-0.5", model="random:tiny", steps=12, snapshot_every=4, cutouts=2,
               seeds=2, seed=3, name="tiny-default", **common)
# 2. default preset on the toy CLIP with a tint and a tv term
clipxai.ascend("❤️", model="toy", steps=20, snapshot_every=5, init_tint=0.2, tv=0.5,
               name="toy-default", **common)
# 3. the same toy run, interrupted after step 10 (for resume across versions)
class StopAt(Callback):
    def on_step_end(self, engine, ctx):
        if ctx.index == 9:
            engine.request_stop("test")
clipxai.ascend("❤️", model="toy", steps=20, snapshot_every=5, init_tint=0.2, tv=0.5,
               name="toy-interrupted", callbacks=[StopAt()], **common)
# 4. fourier parameterization
clipxai.ascend("a red heart", model="random:tiny", steps=8, snapshot_every=4, cutouts=2, param="fourier",
               name="tiny-fourier", **common)
