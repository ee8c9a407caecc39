"""Data-pipeline benchmark: examples/s per loader worker, peak RSS, DSP floor, worker memory.

What it measures (one process, one thread, as one DataLoader worker runs):
    6 s, 44.1 kHz stereo, 4-stem cross-song mixtures (every class present) from a 20-song demo
    corpus, under five effect settings
        a  no effects
        b  cheap: per-stem gain 0.5-1.5 (linear), channel swap, polarity
        c  reverb, chorus, phaser, distortion, each p = 0.2 per stem
        d  RandAudioAugment per stem (p = 0.5 per effect)
        e  c plus pitch shift at p = 0.2
    each read from WAV, from FLAC directly, and from FLAC through the decoded-audio cache (warm).
    Every (setting, source) runs in a fresh subprocess, so its peak RSS is its own.

    For the effect settings it also reports the DSP floor: the time spent inside
    `effects.apply` during the same run (the same calls on the same audio, no I/O), and the
    ratio total / DSP floor. The anchor column is the reference loader (ZFTurbo's MSSDataset,
    measured on this kind of machine in settings a/b/c/e), with our speed-up over it.

    The memory check builds a StemTable + Mixer over a catalog of 100,000 stem rows (paths
    repeat the 80 real stems) and over 1,000 rows, forks a DataLoader with 2 workers that draw
    the examples, and reports each worker's growth of VmRSS, RssAnon and Private_Dirty (the
    last is what copy-on-write copies of the parent's objects would show up in).

Timings on a shared or virtual machine vary by 10-25 % from run to run; --repeat R runs every
row R times, interleaved (round r runs each row once before round r + 1 starts, so a slow spell
of the machine is shared by all rows rather than landing on one), and reports the median run and
the spread (lowest-highest ex/s) per row.

Targets (printed per row): in the cheap settings a and b, at least 3x the reference loader's
examples/s; with the heavier effects (c, d, e), total time within 1.1x of the effects' own DSP
time (so reading and mixing add at most 10 %). The goals are set on WAV; FLAC rows are checked
the same way for information (read directly, FLAC is bound by libsndfile's decoding).

Run:
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/data_pipeline.py            # full, a few minutes
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/data_pipeline.py --quick    # short run
Options: --data DIR (corpus folder, made on first use; default /tmp/noisymss-bench),
--examples N (per setting), --repeat R, --settings a,b, --sources wav,flac,flac-cache[,wav-cache],
--memory-examples N, --no-memory, --out results.json|csv.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import csv  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import zlib  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402

CLASSES = ("vocals", "drums", "bass", "other")
SETTINGS = {
    "a": "no effects",
    "b": "cheap: gain 0.5-1.5, swap, polarity",
    "c": "reverb/chorus/phaser/distortion p=.2",
    "d": "RandAudioAugment (p=.5)",
    "e": "c + pitch shift p=.2",
}
SOURCES = ("wav", "flac", "flac-cache")
# Reference loader (ZFTurbo MSSDataset), examples/s on this kind of machine, same settings.
ANCHOR = {("a", "wav"): 99, ("b", "wav"): 94, ("c", "wav"): 20, ("e", "wav"): 3.4,
          ("a", "flac"): 36, ("b", "flac"): 37, ("c", "flac"): 16, ("e", "flac"): 3.3}
# Examples per setting by default: sized so the full run takes a few minutes.
DEFAULT_EXAMPLES = {"a": 600, "b": 600, "c": 200, "d": 200, "e": 80}
QUICK_EXAMPLES = {"a": 100, "b": 100, "c": 30, "d": 30, "e": 12}
SEGMENT, RATE = 6.0, 44100


# ----------------------------------------------------------------------------- data
def prepare(data: Path) -> tuple[Path, Path]:
    """The 20-song FLAC corpus (rendered once) and its WAV copy; returns their catalog paths."""
    from noisymss.data.catalog import Catalog
    from noisymss.data.synth.corpus import SynthSettings, synthesize

    flac_catalog = data / "flac" / "catalog.csv"
    if not flac_catalog.is_file():
        t = time.perf_counter()
        synthesize(data / "flac", SynthSettings(songs=20, seconds=30.0, seed=0), jobs=os.cpu_count() or 1, progress=False)
        print(f"rendered the 20-song demo corpus in {time.perf_counter() - t:.1f} s -> {data / 'flac'}", flush=True)
    wav_catalog = data / "wav" / "catalog.csv"
    if not wav_catalog.is_file():
        import soundfile as sf

        source = Catalog.load(flac_catalog)
        entries = []
        for e in source.stems():
            flac = source.resolve(e.path)
            wav = data / "wav" / Path(e.path).with_suffix(".wav")
            wav.parent.mkdir(parents=True, exist_ok=True)
            samples, rate = sf.read(str(flac), dtype="int16", always_2d=True)  # exact: the stems are PCM_16
            sf.write(str(wav), samples, rate, subtype="PCM_16")
            entries.append(replace(e, path=str(wav.resolve()),
                                   annotation=str(source.resolve(e.annotation)) if e.annotation else ""))
        Catalog(entries, data / "wav").save(wav_catalog, overwrite=True)
        print(f"wrote WAV copies of {len(entries)} stems -> {data / 'wav'}", flush=True)
    return flac_catalog, wav_catalog


def build_cache(catalog_path: Path, cache_dir: Path) -> float:
    """Decodes every stem into a fresh cache folder; returns the seconds it took."""
    from noisymss.audio.cache import SegmentReader
    from noisymss.data.catalog import Catalog

    shutil.rmtree(cache_dir, ignore_errors=True)
    catalog = Catalog.load(catalog_path)
    t = time.perf_counter()
    reader = SegmentReader(cache_dir)
    for e in catalog.stems():
        reader.read(str(catalog.resolve(e.path)), 0.0, 0.01, e.sample_rate, e.channels)  # first read decodes
    return time.perf_counter() - t


def effects_for(setting: str):
    """The per-stem effect chain of a setting (None for a)."""
    from noisymss.audio.effects import Chain, ChannelSwap, Chorus, Distortion, Gain, Phaser, PitchShift, Polarity, Reverb

    try:
        from noisymss.audio.randaugment import RandAudioAugment
    except ImportError:  # older layout: RandAudioAugment lived in effects
        from noisymss.audio.effects import RandAudioAugment

    heavy = [Reverb(p=0.2), Chorus(p=0.2), Phaser(p=0.2), Distortion(p=0.2)]
    return {
        "a": None,
        "b": Chain([Gain(p=1.0, db=(20 * math.log10(0.5), 20 * math.log10(1.5))), ChannelSwap(), Polarity()]),
        "c": Chain(heavy),
        "d": RandAudioAugment(),
        "e": Chain(heavy + [PitchShift(p=0.2)]),
    }[setting]


class TimedEffects:
    """Wraps an effect chain and adds up the time spent inside `apply` (the DSP floor)."""

    def __init__(self, chain):
        self.chain, self.seconds = chain, 0.0

    def apply(self, audio, sample_rate, rng, inplace=False):
        t = time.perf_counter()
        out = self.chain.apply(audio, sample_rate, rng, inplace=inplace)
        self.seconds += time.perf_counter() - t
        return out


def make_mixer(catalog_path: Path, setting: str, cache_dir: str | None):
    from noisymss.audio.cache import SegmentReader
    from noisymss.data.catalog import Catalog
    from noisymss.data.mixer import Mixer, MixRecipe
    from noisymss.data.table import StemTable

    catalog = Catalog.load(catalog_path)
    table = StemTable.build(catalog, catalog.stems(), CLASSES, catalog.labels())
    recipe = MixRecipe(segment=SEGMENT, sample_rate=RATE, channels=2, class_prob=1.0)
    chain = effects_for(setting)
    timed = TimedEffects(chain) if chain is not None else None
    return Mixer(table, recipe, timed, SegmentReader(cache_dir), seed=0), timed


# ---------------------------------------------------------------------- one measured run
def worker_run(job: dict) -> dict:
    """Runs in a fresh process: warm-up, then `examples` timed draws; returns the figures."""
    import torch

    torch.set_num_threads(1)
    mixer, timed = make_mixer(Path(job["catalog"]), job["setting"], job["cache"])
    for i in range(job["warmup"]):  # another epoch: same files opened, different examples
        mixer.example(1, i)
    if timed is not None:
        timed.seconds = 0.0
    total, checksum, stems = 0.0, 0, 0
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for i in range(job["examples"]):
        t = time.perf_counter()
        ex = mixer.example(0, i)
        total += time.perf_counter() - t
        # Outside the clock, and small so as not to flush the caches: a bitwise fingerprint of
        # every 101st sample of the mixture and of the sources.
        checksum = zlib.crc32(ex.mixture[:, ::101].tobytes(), zlib.crc32(ex.sources[..., ::101].tobytes(), checksum))
        stems += len(ex.stems)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak_mb = usage.ru_maxrss / 1024
    return {"setting": job["setting"], "source": job["source"], "examples": job["examples"],
            "page_faults_per_example": (usage.ru_minflt - faults) / job["examples"],
            "seconds": total, "dsp_seconds": timed.seconds if timed is not None else None,
            "peak_rss_mb": peak_mb, "anon_rss_mb": _status_kb("RssAnon") / 1024,
            "checksum": checksum, "stems_per_example": stems / job["examples"]}


def measure(job: dict) -> dict:
    """Runs `worker_run` in a fresh interpreter (its own peak RSS, one thread)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, __file__, "--_job", json.dumps(job)], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"job {job} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- memory check
def _status_kb(field: str) -> int:
    """A field of /proc/self/status in KiB (VmRSS, RssAnon, RssFile, VmHWM ...)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _memory_kb() -> tuple[int, int, int]:
    """(VmRSS, RssAnon, Private_Dirty) of this process, in KiB.

    VmRSS counts mapped file pages too (audio memory maps: the kernel's page cache, shared).
    Private_Dirty is what this process alone holds: its own heap and copy-on-write copies of
    pages inherited at fork, the number that grows when a worker copies the parent's objects.
    """
    dirty = 0
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            if line.startswith("Private_Dirty:"):
                dirty = int(line.split()[1])
    return _status_kb("VmRSS"), _status_kb("RssAnon"), dirty


_BASELINE: tuple[int, int, int] | None = None


def _record_baseline(_worker_id: int) -> None:
    global _BASELINE
    import torch

    torch.set_num_threads(1)
    _BASELINE = _memory_kb()


_MEMORY_KEYS = ("rss", "anon", "dirty")


class _MemoryProbe:
    """A map-style dataset over a Mixer that reports the worker's memory with every example."""

    def __init__(self, mixer, length: int):
        self.mixer, self.length = mixer, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int):
        import torch

        ex = self.mixer.example(0, index)
        now = _memory_kb()
        return {"mixture": torch.from_numpy(ex.mixture), "pid": os.getpid(),
                **{f"{k}0": v for k, v in zip(_MEMORY_KEYS, _BASELINE)}, **dict(zip(_MEMORY_KEYS, now))}


def table_nbytes(table) -> int:
    """Bytes of the StemTable's arrays (the data a worker may read)."""
    return sum(a.nbytes for a in (table.paths.buffer, table.paths.offsets, table.annotations.buffer,
                                  table.annotations.offsets, table.song, table.duration, table.labels))


def memory_run(job: dict) -> dict:
    """Runs in a fresh process: a `rows`-row catalog, StemTable + Mixer, 2 forked workers."""
    import torch
    from torch.utils.data import DataLoader

    from noisymss.audio.cache import SegmentReader
    from noisymss.data.catalog import Catalog
    from noisymss.data.mixer import Mixer, MixRecipe
    from noisymss.data.table import StemTable

    torch.set_num_threads(1)
    real = Catalog.load(job["catalog"])
    stems = real.stems()
    rows = job["rows"]
    entries = [replace(e, id=f"r{i:06d}", song=f"s{i // 4:06d}", path=str(real.resolve(e.path)),
                       annotation=str(real.resolve(e.annotation)) if e.annotation else "")
               for i, e in ((i, stems[i % len(stems)]) for i in range(rows))]
    t = time.perf_counter()
    catalog = Catalog(entries, real.root)  # kept alive in the parent, as the DataModule keeps it
    table = StemTable.build(catalog, catalog.stems(), CLASSES, catalog.labels())
    build_s = time.perf_counter() - t
    mixer = Mixer(table, MixRecipe(segment=SEGMENT, sample_rate=RATE, channels=2, class_prob=1.0),
                  None, SegmentReader(job["cache"]), seed=0)
    parent_rss = _memory_kb()[0]
    loader = DataLoader(_MemoryProbe(mixer, job["examples"]), batch_size=4, num_workers=2,
                        worker_init_fn=_record_baseline, multiprocessing_context="fork")
    last: dict[int, dict] = {}
    counts: dict[int, int] = {}
    for batch in loader:
        for k in range(len(batch["pid"])):
            pid = int(batch["pid"][k])
            counts[pid] = counts.get(pid, 0) + 1
            last[pid] = {key: int(batch[key][k]) for m in _MEMORY_KEYS for key in (m, m + "0")}
    workers = [{"pid": pid, "examples": counts[pid], "rss_mb": v["rss"] / 1024,
                **{f"{m}_growth_mb": (v[m] - v[m + "0"]) / 1024 for m in _MEMORY_KEYS}}
               for pid, v in sorted(last.items())]
    del catalog
    return {"rows": rows, "table_bytes": table_nbytes(table), "build_s": build_s,
            "parent_rss_mb": parent_rss / 1024, "workers": workers}


def measure_memory(job: dict) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, __file__, "--_memory", json.dumps(job)], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"memory check {job} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------- report
def _fmt(x, spec: str, empty: str = "-") -> str:
    return empty if x is None else format(x, spec)


def print_table(rows: list[dict]) -> None:
    head = (f"{'':2}{'setting':<38}{'source':<11}{'n':>5}{'ex/s':>8}{'spread':>13}{'ms/ex':>7}{'faults':>7}"
            f"{'peakRSS':>9}{'anon':>7}{'DSP ms':>8}{'tot/DSP':>8}{'anchor':>8}{'speedup':>8}  target")
    print(head)
    print("-" * len(head))
    last = None
    for r in rows:
        label = f"{r['setting']} {SETTINGS[r['setting']]}" if r["setting"] != last else ""
        last = r["setting"]
        spread = f"{r['ex_per_s_low']:.0f}-{r['ex_per_s_high']:.0f}"
        print(f"  {label:<38}{r['source']:<11}{r['examples']:>5}{r['ex_per_s']:>8.1f}{spread:>13}{r['ms_per_ex']:>7.1f}"
              f"{r['page_faults_per_example']:>7.0f}"
              f"{r['peak_rss_mb']:>7.0f}MB{r['anon_rss_mb']:>5.0f}MB{_fmt(r['dsp_ms_per_ex'], '8.1f', '       -')}"
              f"{_fmt(r['total_over_dsp'], '8.2f', '       -')}{_fmt(r['anchor'], '8.1f', '       -')}"
              f"{_fmt(r['speedup'], '7.1f', '      -')}{'x' if r['speedup'] is not None else ' '}  {r['target']}")


def target_of(setting: str, source: str, ex_per_s: float, speedup: float | None, ratio: float | None) -> str:
    if setting in ("a", "b"):
        return "-" if speedup is None else f">=3x anchor: {'met' if speedup >= 3 else 'MISSED'}"
    return "-" if ratio is None else f"<=1.1x DSP: {'met' if ratio <= 1.1 else 'MISSED'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=os.path.join(tempfile.gettempdir(), "noisymss-bench"),
                        help="corpus folder (rendered on first use)")
    parser.add_argument("--examples", type=int, default=None, help="timed examples per setting (default per setting)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed examples first (default 10%% of examples, >= 3)")
    parser.add_argument("--quick", action="store_true", help="a short run")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs per row, interleaved across rows; the median run and the spread are reported")
    parser.add_argument("--settings", default="a,b,c,d,e")
    parser.add_argument("--sources", default=",".join(SOURCES), help="wav, flac, flac-cache, wav-cache")
    parser.add_argument("--memory-examples", type=int, default=None, help="examples drawn in the memory check")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory check")
    parser.add_argument("--out", default=None, help="write results as .json or .csv")
    parser.add_argument("--_job", help=argparse.SUPPRESS)
    parser.add_argument("--_memory", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._job:
        print(json.dumps(worker_run(json.loads(args._job))))
        return
    if args._memory:
        print(json.dumps(memory_run(json.loads(args._memory))))
        return

    data = Path(args.data)
    flac_catalog, wav_catalog = prepare(data)
    settings = [s.strip() for s in args.settings.split(",") if s.strip()]
    sources = [s.strip() for s in args.sources.split(",") if s.strip()]
    caches, cache_build = {}, {}
    for source in sources:
        if source.endswith("-cache"):
            fmt = source.split("-")[0]
            cache_dir = data / f"cache-{fmt}"
            seconds = build_cache(flac_catalog if fmt == "flac" else wav_catalog, cache_dir)
            caches[source], cache_build[source] = str(cache_dir), seconds
            print(f"decoded-audio cache for {fmt.upper()} built in {seconds:.2f} s (80 stems x 30 s, one process) "
                  f"-> {cache_dir}", flush=True)

    defaults = QUICK_EXAMPLES if args.quick else DEFAULT_EXAMPLES
    jobs = []
    for setting in settings:
        for source in sources:
            n = args.examples or defaults[setting]
            jobs.append({"setting": setting, "source": source, "examples": n,
                         "warmup": args.warmup if args.warmup is not None else max(3, n // 10),
                         "catalog": str(flac_catalog if source.startswith("flac") else wav_catalog),
                         "cache": caches.get(source)})
    runs: list[list[dict]] = [[] for _ in jobs]
    started = time.perf_counter()
    for round_ in range(args.repeat):  # interleaved: every row once per round
        for job, done in zip(jobs, runs):
            done.append(measure(job))
            print(f"  round {round_ + 1}/{args.repeat} {job['setting']}/{job['source']}: "
                  f"{job['examples'] / done[-1]['seconds']:.1f} ex/s", flush=True)
    rows = []
    for job, done in zip(jobs, runs):
        done.sort(key=lambda x: x["seconds"])
        r = done[len(done) // 2]  # the median run
        setting, source = job["setting"], job["source"]
        ex_per_s = r["examples"] / r["seconds"]
        anchor = ANCHOR.get((setting, source.split("-")[0]))
        dsp = r["dsp_seconds"]
        ratio = r["seconds"] / dsp if dsp else None
        speedup = ex_per_s / anchor if anchor else None
        rows.append({**r, "ex_per_s": ex_per_s, "ms_per_ex": 1000 * r["seconds"] / r["examples"],
                     "ex_per_s_low": done[-1]["examples"] / done[-1]["seconds"],
                     "ex_per_s_high": done[0]["examples"] / done[0]["seconds"], "runs": len(done),
                     "dsp_ms_per_ex": 1000 * dsp / r["examples"] if dsp is not None else None,
                     "total_over_dsp": ratio, "anchor": anchor, "speedup": speedup,
                     "target": target_of(setting, source, ex_per_s, speedup, ratio)})
    print(f"\nthroughput runs took {time.perf_counter() - started:.0f} s\n")
    print("Examples/s per worker (one process, one thread): 6 s 44.1 kHz stereo, 4 stems, cross-song, 20 songs.")
    print(f"ex/s = median of {args.repeat} interleaved run(s) per row; spread = lowest-highest run; "
          "faults = minor page faults per example.")
    print("peakRSS = the process's VmHWM, mapped audio pages (page cache) included; anon = its heap (RssAnon) at the end.")
    print("DSP ms = time inside effects.apply (same calls, same audio, no I/O); tot/DSP = total / DSP floor.")
    print("anchor = ZFTurbo MSSDataset on this kind of machine (flac-cache is compared with its FLAC figure).\n")
    print_table(rows)
    sums = {}
    for r in rows:
        sums.setdefault(r["setting"], set()).add(r["checksum"])
    same = all(len(v) == 1 for v in sums.values())
    print(f"\nsame examples from every source: {'yes' if same else 'NO'} (bitwise fingerprint of mixtures and sources)")
    for source, seconds in cache_build.items():
        print(f"{source}: cache warm (built once before these runs in {seconds:.2f} s)")

    memory = None
    if not args.no_memory:
        n = args.memory_examples or (40 if args.quick else 200)
        memory = [measure_memory({"catalog": str(wav_catalog), "rows": rows_, "examples": n, "cache": None})
                  for rows_ in (1_000, 100_000)]
        print(f"\nMemory check: DataLoader(num_workers=2, fork, batch 4), {n} examples drawn in the workers "
              f"(WAV, no effects); the catalog stays alive in the parent, as in the DataModule.")
        print("Growth = after the worker's last example minus at its start. RSS includes mapped audio pages "
              "(page cache);\nanon = heap; private dirty = heap + copy-on-write copies of the parent's pages.\n")
        print(f"  {'rows':>8}{'table bytes':>13}{'build s':>9}{'parent RSS':>12}   per worker: examples, growth of RSS / anon / private dirty")
        for m in memory:
            workers = ";  ".join(f"{w['examples']} ex, {w['rss_growth_mb']:+.1f} / {w['anon_growth_mb']:+.1f} / "
                                 f"{w['dirty_growth_mb']:+.1f} MB" for w in m["workers"])
            print(f"  {m['rows']:>8}{m['table_bytes']:>13,}{m['build_s']:>9.2f}{m['parent_rss_mb']:>10.0f}MB   {workers}")
        small, large = memory
        table_mb = (large["table_bytes"] - small["table_bytes"]) / 2**20
        for key, name in (("rss", "RSS"), ("dirty", "private dirty")):
            extra = (max(w[f"{key}_growth_mb"] for w in large["workers"])
                     - max(w[f"{key}_growth_mb"] for w in small["workers"]))
            print(f"  worker {name} growth, 100k minus 1k rows: {extra:+.1f} MB (the tables differ by {table_mb:.1f} MB): "
                  f"{'flat' if extra <= table_mb + 2.0 else 'GROWS with catalog size'}")

    if args.out:
        out = Path(args.out)
        if out.suffix == ".csv":
            with open(out, "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(rows)
        else:
            out.write_text(json.dumps({"throughput": rows, "cache_build_s": cache_build, "memory": memory}, indent=2))
        print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
