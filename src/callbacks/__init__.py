"""Lightning callbacks a run uses: kimg checkpoints, sample grids, progress lines, step limits,
in-training metrics, D-score and SEGAN traversal views.
"""
