#!/usr/bin/python3
"""notebooks/build.py — writes notebooks/NN_name.ipynb from the cell files notebooks/src/NN_name.py.

    /usr/bin/python3 notebooks/build.py [NAME.py ...]      (default: every file in notebooks/src/)

A cell file is plain Python; a line `# %%` starts a code cell and `# %% [markdown]` a markdown cell, whose lines
are comments ("# " is stripped). The .ipynb files are generated, never edited by hand: `make notebooks` rebuilds
and executes them in place, and the CTest test notebook_* (check_notebook.py) fails when a committed notebook's
cells differ from what its cell file generates.
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "src")


def parse_cells(path):
    """[(kind, source)] of a cell file, kind 'code' or 'markdown'."""
    cells, kind, lines = [], None, []

    def flush():
        text = "\n".join(lines).strip("\n")
        if kind is not None and text:
            cells.append((kind, text))

    with open(path) as f:
        for line in f.read().splitlines():
            if line.startswith("# %%"):
                flush()
                kind, lines = ("markdown" if "[markdown]" in line else "code"), []
            elif kind == "markdown":
                lines.append(line[2:] if line.startswith("# ") else line.lstrip("#"))
            elif kind == "code":
                lines.append(line)
    flush()
    return cells


def notebook(cells):
    """An nbformat 4 notebook (without outputs) of the cells, for Debian's python3 kernel."""
    def source(text):
        parts = text.split("\n")
        return [p + "\n" for p in parts[:-1]] + [parts[-1]]

    nb_cells = []
    for i, (kind, text) in enumerate(cells):
        # nbformat 4.5 wants an id per cell; numbering them keeps a rebuilt notebook's diff to what changed.
        cell = {"cell_type": kind, "id": f"cell-{i}", "metadata": {}, "source": source(text)}
        if kind == "code":
            cell.update(execution_count=None, outputs=[])
        nb_cells.append(cell)
    return {
        "cells": nb_cells,
        "metadata": {
            "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def ipynb_path(src_path):
    return os.path.join(HERE, os.path.splitext(os.path.basename(src_path))[0] + ".ipynb")


def main(names):
    paths = [os.path.join(SRC, n) for n in names] or sorted(
        os.path.join(SRC, n) for n in os.listdir(SRC) if n.endswith(".py"))
    for p in paths:
        with open(ipynb_path(p), "w") as f:
            json.dump(notebook(parse_cells(p)), f, indent=1)
            f.write("\n")
        print(f"wrote {os.path.relpath(ipynb_path(p))}")


if __name__ == "__main__":
    main(sys.argv[1:])
