"""``serbench`` where it is not installed (PYTHONPATH=repo root): ``python benchmarks/gpu/sb.py deep ...``."""
from serbench.cli import main

if __name__ == "__main__":  # worker processes (forkserver/spawn) import this file again
    main()
