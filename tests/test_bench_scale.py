"""pytest tests/test_bench_scale.py

The helpers of bench/scale.py at toy size: the peak-RSS poller tells a big process from a small
one run beside it, the --config files load as the steps read them, and the store comparison
sees a one-byte difference; bench/ingest.py runs end to end at toy size.
"""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from asrsweep.acoustic.train import TrainConfig
from asrsweep.core.common import load_section
from asrsweep.data.audio import DataConfig
from asrsweep.data.compute_features import FeaturesConfig
from asrsweep.data.feature_store import write_split

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def scale():
    spec = importlib.util.spec_from_file_location("bench_scale", ROOT / "bench" / "scale.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def test_parallel_processes_each_get_their_own_peak(scale, tmp_path):
    # the big one frees its 300 MB before it exits: only a high-water mark still sees them
    big = "b = bytearray(300_000_000); b[::4096] = b'x' * len(b[::4096]); del b; import time; time.sleep(0.3)"
    small = "import time; time.sleep(0.3)"
    logs = [tmp_path / "big.log", tmp_path / "small.log"]
    measured = scale.run_measured([[sys.executable, "-c", big], [sys.executable, "-c", small]], logs)
    assert measured.peaks[0] > 300e6
    assert measured.peaks[1] < 100e6
    assert 0.3 < measured.seconds < 10


def test_a_failed_process_is_reported_with_its_log(scale, tmp_path):
    with pytest.raises(SystemExit, match="boom"):
        scale.run_measured([[sys.executable, "-c", "raise SystemExit('boom')"]], [tmp_path / "x.log"])


def test_configs_are_what_the_steps_read(scale, tmp_path):
    configs = scale.write_configs(tmp_path, train_utts=12, steps=5)
    assert load_section(configs["data"], "data", DataConfig).demo.train_utts == 12
    assert load_section(configs["features"], "features", FeaturesConfig).type == "logmel"
    train = load_section(configs["train"], "train", TrainConfig)
    assert (train.max_steps, train.eval_every, train.checkpoint_every) == (5, 0, 0)
    assert scale.utts_for_hours(2.0203) == 3000


def test_store_comparison_and_size(scale, tmp_path):
    rows = [{"utt_id": f"u{i}", "text": "yes", "speaker": "s"} for i in range(3)]
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        write_split(tmp_path / name, "train", rows, (torch.full((4, 2), float(i)).half() for i in range(3)), 1.0)
    assert scale.same_store(tmp_path / "a", tmp_path / "b")
    assert scale.store_bytes(tmp_path / "a") == sum(p.stat().st_size for p in (tmp_path / "a").iterdir())
    shard = tmp_path / "b" / "train-00000.npy"
    data = bytearray(shard.read_bytes())
    data[-1] ^= 1
    shard.write_bytes(bytes(data))
    assert not scale.same_store(tmp_path / "a", tmp_path / "b")


def test_ingest_bench_runs_both_ways_and_compares_the_manifests(tmp_path):
    """bench/ingest.py at toy size: 1 job vs 2 shard jobs, in place and copied, equal data folders."""
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "ingest.py"), "--utts", "40", "--rounds", "1",
                           "--workdir", str(tmp_path)], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert proc.stdout.count("manifests equal: yes") == 2
    copied = (tmp_path / "ingest" / "data-copy-2jobs" / "train.tsv").read_text()
    assert "shards/0-of-2/audio/" in copied and "shards/1-of-2/audio/" in copied
