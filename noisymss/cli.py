"""The `noisymss` command.

Verbs that need no Trainer are plain argparse commands here; each imports its heavy modules
only when it runs, so `noisymss --help` answers at once.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
from collections import Counter
from pathlib import Path

LIGHTNING_VERBS = ("fit", "validate", "test", "predict", "refine", "check")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in LIGHTNING_VERBS:  # LightningCLI parses these itself (--config, --help, ...)
        from noisymss.lightning_cli import run

        verb, work, ours = argv[0], lambda: run(argv), (ValueError, OSError)
    else:
        parser = _parser()
        args = parser.parse_args(argv)
        if not getattr(args, "run", None):
            parser.print_help()
            return 2
        verb, work, ours = args.verb, lambda: args.run(args), (ValueError, OSError, RuntimeError)
    try:
        return work() or 0
    except argparse.ArgumentError as err:  # LightningCLI's parser: the error and the hint, not the whole usage
        print(f"noisymss {verb}: error: {_short_parse_error(str(err))}\n"
              f"  (noisymss {verb} --help lists the options)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except ours as err:  # our errors are one-line and say what to do
        if verb in LIGHTNING_VERBS:
            err = _ours(err)  # (jsonargparse wraps the error a class raised while it built it)
            if err is None:
                raise  # an error from inside torch or Lightning during training: keep its traceback
        print(f"noisymss {verb}: error: {err}", file=sys.stderr)
        return 1


def _short_parse_error(message: str) -> str:
    """jsonargparse's message, shortened to the option at fault and what was wrong with it (its full
    text lists every type it tried for every enclosing key)."""
    keys = re.findall(r'Parser key "([^"]+)":\s*\n\s*(.+)', message)
    if keys:
        return f"{'.'.join(k for k, _ in keys)}: {keys[-1][1].strip()}"
    return "\n  ".join([line.rstrip() for line in message.strip().splitlines() if line.strip()][:4])


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error and the hint, instead of the usage block around it."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n  ({self.prog} --help lists the options)\n")


def _ours(err: BaseException | None) -> BaseException | None:
    """The first error in `err`'s chain of causes that noisymss raised, or None."""
    seen = set()
    while err is not None and id(err) not in seen:
        if _raised_by_noisymss(err):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


def _raised_by_noisymss(err: BaseException) -> bool:
    tb = err.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    package = str(Path(__file__).resolve().parent) + os.sep
    return tb is not None and str(Path(tb.tb_frame.f_code.co_filename).resolve()).startswith(package)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="noisymss", description="Music models trained from imperfect labels (Lightning experiment framework)."
    )
    sub = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)

    lightning_help = {
        "fit": "train a task from a config (e.g. --config configs/noisy_student.yaml)",
        "validate": "score a checkpoint on the validation data of a config",
        "test": "score a checkpoint on the test data of a config (--ckpt_path CKPT)",
        "predict": "write a trained model's results for audio files (--config, --ckpt_path, --files [A, B], --out DIR)",
        "refine": "relabel a catalog's stems with a trained classifier as a new label version (--config, --ckpt_path)",
        "check": "pre-flight check of a config's data (and --ckpt_path) without training (--config, --stage fit)",
    }
    for verb, text in lightning_help.items():  # listed for --help; main() hands them to LightningCLI
        sub.add_parser(verb, help=text, add_help=False)

    p = sub.add_parser("synth", help="render the demo corpus (Bach chorales as vocals/drums/bass/other stems)")
    p.add_argument("--out", required=True, type=Path, help="corpus folder (created; rerun to resume)")
    p.add_argument("--songs", type=int, default=20, help="number of songs (default 20)")
    p.add_argument("--seconds", type=float, default=30.0, help="length of each song in seconds (default 30)")
    p.add_argument("--seed", type=int, default=0, help="random seed; same seed, same corpus (default 0)")
    p.add_argument("--label-noise", type=float, default=0.0, help="fraction of stems with corrupted labels (default 0)")
    p.add_argument("--soundfont", default="", help="General MIDI .sf2 (default: TimGM6mb from pretty_midi)")
    p.add_argument("--splits", default="train=0.8,valid=0.1,test=0.1", help="split fractions (default %(default)s)")
    p.add_argument("--include-bach10", action="store_true", help="also use the chorales that Bach10 records")
    p.add_argument("--noise-kinds", default="swap,merge",
                   help="label-noise kinds, taking turns: swap, merge, bleed (another part 10-20 dB down); default swap,merge")
    p.add_argument("--voice", choices=["oohs", "singer", "mix"], default="mix",
                   help="vocal stem: GM Voice Oohs, the synthesised singer, or either per song (default mix)")
    p.add_argument("--jobs", type=int, default=1, help="songs rendered in parallel (default 1)")
    p.set_defaults(run=_synth)

    p = sub.add_parser("index", help="scan a dataset folder into a stem catalog (CSV)")
    p.add_argument("root", type=Path, help="dataset folder")
    p.add_argument("--format", required=True, choices=["musdb", "sdx23", "folder", "mixtures", "bach10", "medleydb", "mir1k", "ikala",
                                                        "medleydb_melody", "medleydb_pitch", "mdb_stem_synth", "orchset", "tonas", "dagstuhl",
                                                        "slakh", "moisesdb"])
    p.add_argument("--taxonomy", type=Path, help="slakh, moisesdb: a from,to CSV mapping the dataset's instrument names "
                                                   "to classes (default: vocals / drums / bass / other)")
    p.add_argument("--out", required=True, type=Path, help="catalog CSV to write (never overwritten)")
    p.set_defaults(run=_index)

    p = sub.add_parser("melody", help="extract the vocal melody (f0 every 10 ms) of audio files with a trained model")
    p.add_argument("audio", nargs="+", type=Path, help="audio files (any format soundfile reads)")
    p.add_argument("--ckpt", type=Path, default=None,
                   help="checkpoint of a melody task (noisymss fit ... MelodyTask) or released .safetensors weights; "
                        "default: the model shipped with noisymss (docs/melody_model.md)")
    p.add_argument("--out", required=True, type=Path, help="folder for <name>.f0.txt files (mir_eval two-column format)")
    p.add_argument("--jobs", type=int, default=0, help="worker processes, one thread each (default: one per CPU core; 1 on a GPU)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, ... (default: cuda when available)")
    p.add_argument("--overwrite", action="store_true", help="replace f0 files already in --out (default: refuse)")
    p.set_defaults(run=_melody)

    p = sub.add_parser("separate", help="separate audio files into sources with a trained separator")
    p.add_argument("audio", nargs="+", type=Path, help="audio files (any rate and format soundfile reads)")
    p.add_argument("--ckpt", required=True, type=Path, help="checkpoint of a separator task (noisymss fit ... SeparatorTask)")
    p.add_argument("--out", required=True, type=Path, help="folder for <name>/<source>.<format> files")
    p.add_argument("--format", choices=["wav", "flac"], default="wav", help="wav (32-bit float) or flac (24-bit) (default wav)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, ... (default: cuda when available)")
    p.add_argument("--overwrite", action="store_true", help="replace stems already in --out (default: refuse)")
    p.set_defaults(run=_separate)

    p = sub.add_parser("catalog", help="make a new catalog from others: merge, split, withhold, map, filter, noise")
    tools = p.add_subparsers(dest="tool", metavar="TOOL", parser_class=_Parser, required=True)
    t = tools.add_parser("merge", help="several catalogs into one (ids kept unique, paths kept valid)")
    t.add_argument("catalogs", nargs="+", type=Path)
    t.add_argument("--names", default="", help="comma-separated prefixes for clashing ids (default: the file names)")
    t = tools.add_parser("split", help="assign splits by group (singer, artist, else song): a group never spans two")
    t.add_argument("catalog", type=Path)
    how = t.add_mutually_exclusive_group(required=True)
    how.add_argument("--fractions", help="name=fraction pairs of the audio, e.g. train=0.8,valid=0.1,test=0.1")
    how.add_argument("--list", type=Path, help="CSV of group (or song),split lines")
    t.add_argument("--seed", type=int, default=0)
    t = tools.add_parser("withhold", help="clear one split's labels (an unlabelled split); the truth is kept for scoring")
    t.add_argument("catalog", type=Path)
    t.add_argument("--split", required=True)
    t = tools.add_parser("map", help="rename labels through a from,to table (an empty 'to' drops the label)")
    t.add_argument("catalog", type=Path)
    t.add_argument("--table", required=True, type=Path)
    t = tools.add_parser("filter", help="keep rows of some splits, roles or labels")
    t.add_argument("catalog", type=Path)
    t.add_argument("--split", action="append", default=[], help="repeatable")
    t.add_argument("--role", action="append", default=[], choices=["stem", "mixture"], help="repeatable")
    t.add_argument("--label", action="append", default=[], help="repeatable")
    t = tools.add_parser("noise", help="inject label noise into a copy (swap, merge, bleed), the truth kept; "
                                       "corrupted audio written beside the new catalog")
    t.add_argument("catalog", type=Path)
    t.add_argument("--rate", type=float, required=True, help="fraction of the split's stems corrupted, e.g. 0.3")
    t.add_argument("--kinds", default="swap,merge", help="kinds taking turns: swap, merge, bleed (default swap,merge)")
    t.add_argument("--split", action="append", default=[], help="splits whose stems are corrupted (default train)")
    t.add_argument("--seed", type=int, default=0)
    for t in tools.choices.values():
        t.add_argument("--out", required=True, type=Path, help="the new catalog CSV (never overwritten)")
    p.set_defaults(run=_catalog)

    p = sub.add_parser("info", help="summarise a catalog: rows, classes, splits, label versions, label accuracy")
    p.add_argument("catalog", type=Path)
    p.set_defaults(run=_info)

    p = sub.add_parser("preview", help="draw a few mixed batches from a catalog and print what they hold")
    p.add_argument("catalog", type=Path)
    p.add_argument("--batches", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--segment", type=float, default=6.0, help="seconds per example")
    p.add_argument("--effects", choices=["none", "mixing", "randaugment"], default="mixing")
    p.add_argument("--label-version", default="given")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--audio-out", type=Path, default=None, help="also write the first batch's mixtures here as WAV")
    p.set_defaults(run=_preview)
    return parser


def _melody(args) -> int:
    from noisymss.data.annotations import write_f0
    from noisymss.melody.inference import f0_of_files
    from noisymss.outputs import check_inputs, claim_outputs, output_paths

    check_inputs(args.audio)
    device = _device(args.device)
    jobs = args.jobs or (1 if device.startswith("cuda") else os.cpu_count() or 1)
    targets = dict(zip(args.audio, output_paths(args.audio, args.out, ".f0.txt")))  # no two inputs share one
    claim_outputs(list(targets.values()), args.overwrite)
    failed = []
    for path, times, f0, reason in f0_of_files(args.ckpt, args.audio, jobs=jobs, device=device):
        if reason:
            failed.append(path)
            print(f"skipped {path}: {reason}", file=sys.stderr)
        else:
            write_f0(targets[path], times, f0)
    print(f"wrote {len(args.audio) - len(failed)} f0 file(s) to {args.out}" + (f"; {len(failed)} failed" if failed else ""))
    return 1 if failed else 0


def _separate(args) -> int:
    from noisymss.outputs import check_inputs, claim_outputs, output_paths
    from noisymss.separation.inference import separate_files

    check_inputs(args.audio)
    device = _device(args.device)
    claim_outputs(output_paths(args.audio, args.out, ""), args.overwrite)
    failed = separate_files(args.ckpt, args.audio, args.out, fmt=args.format, device=device)
    for path, reason in failed:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    print(f"separated {len(args.audio) - len(failed)} file(s) into {args.out}" + (f"; {len(failed)} failed" if failed else ""))
    return 1 if failed else 0


def _device(name: str) -> str:
    """--device as torch names it: 'auto' is cuda when available; a CUDA device this machine lacks is
    a one-line error here, not an assertion deep in torch."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"--device {name}: not a device; use cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if (device.index or 0) >= count:
            raise ValueError(f"--device {name}: this machine has {count} CUDA device(s); use --device cpu"
                             + (f" or cuda:0..{count - 1}" if count else ""))
    elif device.type != "cpu":
        raise ValueError(f"--device {name}: only cpu and cuda devices are supported")
    return name


def _synth(args) -> int:
    from noisymss.data.synth.corpus import SynthSettings, synthesize

    splits = tuple(_pairs(args.splits, "--splits").items())
    settings = SynthSettings(songs=args.songs, seconds=args.seconds, seed=args.seed, label_noise=args.label_noise,
                             soundfont=args.soundfont, splits=splits, include_bach10=args.include_bach10, voice=args.voice,
                             noise_kinds=tuple(k.strip() for k in args.noise_kinds.split(",") if k.strip()))
    catalog = synthesize(args.out, settings, jobs=args.jobs)
    print(f"wrote {catalog.path} ({len(catalog.stems())} stems, {len(catalog.mixtures())} mixtures)")
    _print_info(catalog)
    return 0


def _index(args) -> int:
    from noisymss.data.catalog import CatalogError
    from noisymss.data.sources import index_dir

    if args.out.exists():
        raise CatalogError(f"{args.out}: exists; choose another --out (catalogs hold given labels and are never overwritten)")
    taxonomy = None
    if args.taxonomy:
        from noisymss.data.catalog_ops import read_table

        taxonomy = read_table(args.taxonomy)
    # MUSDB18's .stem.mp4 files are decoded beside the catalog (inside the folder --out names)
    decode_to = args.out.parent / f"{args.out.stem}.audio" if args.format == "musdb" else None
    catalog, skipped = index_dir(args.root, args.format, taxonomy=taxonomy, decode_to=decode_to)
    for s in skipped:
        print(f"{'note' if s.kept else 'skipped'} {s.path}: {s.reason}", file=sys.stderr)
    catalog.save(args.out)
    left_out = sum(not s.kept for s in skipped)
    print(f"wrote {args.out}: {len(catalog.stems())} stems, {len(catalog.mixtures())} mixtures, {left_out} file(s) skipped"
          + (f", {len(skipped) - left_out} note(s)" if left_out < len(skipped) else ""))
    labels = Counter(c for e in catalog.stems() for c in e.labels)
    if labels:  # an instrument the format's table does not name shows here under its own name
        print("  labels: " + ", ".join(f"{c}={n}" for c, n in labels.most_common()))
    return 0


def _catalog(args) -> int:
    from noisymss.data import catalog_ops as ops
    from noisymss.data.catalog import Catalog, CatalogError

    if args.out.exists():
        raise CatalogError(f"{args.out}: exists; choose another --out (catalogs are never overwritten)")
    if args.tool == "merge":
        names = args.names.split(",") if args.names else [p.stem for p in args.catalogs]
        if len(names) != len(args.catalogs):
            raise ValueError(f"--names {args.names}: give one name per catalog ({len(args.catalogs)})")
        new = ops.merge([Catalog.load(p) for p in args.catalogs], names)
    else:
        catalog = Catalog.load(args.catalog)
        if args.tool == "split" and args.fractions:
            new = ops.split_by_fractions(catalog, _pairs(args.fractions, "--fractions"), args.seed)
        elif args.tool == "split":
            new = ops.split_from_list(catalog, ops.read_table(args.list))
        elif args.tool == "withhold":
            new = ops.withhold(catalog, args.split)
        elif args.tool == "map":
            new, unmapped = ops.map_labels(catalog, ops.read_table(args.table))
            if unmapped:
                print("kept, not in the table: " + ", ".join(f"{c!r} on {n} row(s)" for c, n in unmapped.most_common()))
        elif args.tool == "noise":
            from noisymss.data.label_noise import inject

            kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
            inject(catalog, args.out, args.rate, kinds, args.seed, args.split or ["train"])
            _print_info(Catalog.load(args.out))
            return 0
        else:
            new = ops.filter_rows(catalog, args.split, args.role, args.label)
    new.save(args.out)
    _print_info(new)
    return 0


def _pairs(text: str, option: str) -> dict[str, float]:
    try:
        pairs = {name.strip(): float(value) for name, value in (item.split("=") for item in text.split(","))}
    except ValueError:
        raise ValueError(f"{option} {text}: give name=fraction pairs, e.g. train=0.8,valid=0.1,test=0.1") from None
    if any(not name or value <= 0 for name, value in pairs.items()):
        raise ValueError(f"{option} {text}: every split needs a name and a positive fraction")
    return pairs


def _info(args) -> int:
    from noisymss.data.catalog import Catalog

    _print_info(Catalog.load(args.catalog))
    return 0


def _print_info(catalog) -> None:
    stems = catalog.stems()
    print(f"catalog {catalog.path}: {len(stems)} stems, {len(catalog.mixtures())} mixtures, {len({e.song for e in catalog})} songs")
    songs_per_split = Counter(split for split, _ in {(e.split, e.song) for e in catalog})
    print("  songs per split: " + ", ".join(f"{k}={v}" for k, v in sorted(songs_per_split.items())))
    print("  given labels: " + ", ".join(f"{k}={v}" for k, v in Counter(c for e in stems for c in e.labels).items()))
    for version in catalog.label_versions():
        labels = catalog.labels(version)
        known = [e for e in stems if e.true_labels is not None]
        line = f"  label version {version!r}"
        if known:
            exact = sum(set(labels[e.id]) == set(e.true_labels) for e in known) / len(known)
            line += f": {100 * exact:.1f}% of {len(known)} stems match their true labels"
        print(line)


def _preview(args) -> int:
    import time

    from noisymss.audio.effects import ChannelSwap, Chorus, Compressor, Distortion, Equalizer, Gain, Polarity, Reverb
    from noisymss.audio.randaugment import RandAudioAugment
    from noisymss.data.datamodule import MixDataModule, describe_batch
    from noisymss.data.mixer import MixRecipe

    effects = {
        "none": None,
        "mixing": [Gain(db=(-6, 3)), ChannelSwap(p=0.5), Polarity(p=0.5), Equalizer(p=0.3), Compressor(p=0.2),
                   Reverb(p=0.2), Chorus(p=0.1), Distortion(p=0.1)],
        "randaugment": [RandAudioAugment()],
    }[args.effects]
    dm = MixDataModule(str(args.catalog), label_version=args.label_version, recipe=MixRecipe(segment=args.segment),
                       effects=effects, batch_size=args.batch_size, train_examples=args.batches * args.batch_size, seed=args.seed)
    dm.setup()
    if args.audio_out:
        from noisymss.outputs import refuse_existing

        refuse_existing([args.audio_out / f"mixture_{i}.wav" for i in range(args.batch_size)], "choose another --audio-out")
    print(f"classes {dm.classes}, label version {dm.label_version!r}, effects {args.effects}")
    start = time.perf_counter()
    for k, batch in enumerate(dm.train_dataloader()):
        print(f"batch {k}: mixture {tuple(batch['mixture'].shape)}, label {tuple(batch['label'].shape)}")
        print(describe_batch(batch, dm.classes))
        if k == 0 and args.audio_out:
            from noisymss.audio.io import write_audio

            for i, mix in enumerate(batch["mixture"].numpy()):
                write_audio(args.audio_out / f"mixture_{i}.wav", mix, dm.recipe.sample_rate)
            print(f"  wrote {len(batch['mixture'])} mixtures to {args.audio_out}")
    took = time.perf_counter() - start
    print(f"{args.batches * args.batch_size} examples in {took:.2f}s ({args.batches * args.batch_size / took:.1f} examples/s, 1 process)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
