"""Command line: ``python -m fastnn`` / ``fastnn``.

The default action, ``demo``, trains an MLP on the bundled digits and prints
the test accuracy, the training time and samples/s; ``--compare`` runs the
identical job on the NumPy reference too and prints the speed ratio. Other
subcommands (``train``, ``predict``, ``bench``) are added beside ``demo``.
"""
import argparse
import sys
import time

import fastnn as fnn


def _hidden(text):
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes like 128,64, got {text!r}") from None
    if any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError(f"hidden sizes must be positive, got {text!r}")
    return sizes


def build_parser():
    parser = argparse.ArgumentParser(
        prog="fastnn", description="Fast CPU training of dense neural networks.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser("demo", help="train an MLP on the bundled digits (the default)")
    demo.add_argument("--epochs", type=int, default=30)
    demo.add_argument("--batch-size", type=int, default=32)
    demo.add_argument("--hidden", type=_hidden, default=[128, 64],
                      help="hidden layer sizes, comma-separated (default 128,64)")
    demo.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--threads", type=int, default=None,
                      help="kernel threads (default: all cores; negative: cores+1+n)")
    demo.add_argument("--backend", choices=fnn._backend.BACKENDS, default="c")
    demo.add_argument("--compare", action="store_true",
                      help="also run the same job on the NumPy reference; print the ratio")
    demo.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    demo.set_defaults(func=run_demo)
    return parser


def train_digits(args, backend, verbose):
    """Train on the digits; return (test accuracy, seconds, samples/s)."""
    X, y = fnn.datasets.load_digits()
    X_tr, X_te, y_tr, y_te = fnn.train_test_split(X, y, test_size=0.25, seed=args.seed,
                                                  stratify=True)
    sizes = [X.shape[1]] + args.hidden + [10]
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [fnn.Linear(n_in, n_out), fnn.ReLU()]
    model = fnn.Sequential(*layers[:-1], seed=args.seed, backend=backend)
    optimizer = fnn.Adam(model.parameters(), lr=args.lr)
    t0 = time.perf_counter()
    model.fit(X_tr, y_tr, loss=fnn.CrossEntropyLoss(), optimizer=optimizer,
              epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
              verbose=verbose)
    seconds = time.perf_counter() - t0
    accuracy = model.evaluate(X_te, y_te)["accuracy"]
    return accuracy, seconds, args.epochs * len(X_tr) / seconds, len(X_tr), len(X_te), sizes


def run_demo(args):
    if args.threads is not None:
        fnn.set_num_threads(args.threads)
    backends = [args.backend] + (["numpy" if args.backend == "c" else "c"] if args.compare else [])
    results = {}
    for i, backend in enumerate(backends):
        threads = fnn.get_num_threads() if backend == "c" else "numpy's BLAS"
        if i == 0 or not args.quiet:
            print(f"fastnn {fnn.__version__}: digits MLP, backend {backend} ({threads} threads)")
        acc, seconds, rate, n_tr, n_te, sizes = train_digits(args, backend, 0 if args.quiet else 1)
        results[backend] = (acc, seconds, rate)
        print(f"network {'-'.join(map(str, sizes))} ReLU, Adam lr={args.lr:g}, "
              f"{args.epochs} epochs, batch {args.batch_size}, {n_tr} train / {n_te} test samples")
        print(f"test accuracy: {acc:.4f}")
        print(f"training time: {seconds:.3f} s ({rate:,.0f} samples/s) [{backend}]")
    if args.compare:
        print("\n| backend | test accuracy | training time (s) | samples/s |")
        print("|---|---|---|---|")
        for b, (acc, seconds, rate) in results.items():
            print(f"| {b} | {acc:.4f} | {seconds:.3f} | {rate:,.0f} |")
        c_time, np_time = results["c"][1], results["numpy"][1]
        print(f"speed ratio (numpy time / c time): {np_time / c_time:.2f}x")
    return 0


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv or argv[0] not in ("demo", "-h", "--help"):
        argv = ["demo"] + argv     # the default action
    args = parser.parse_args(argv)
    if args.command == "demo" and (args.epochs < 0 or args.batch_size < 1):
        parser.error("--epochs must be >= 0 and --batch-size >= 1")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
