"""Networks: the RVC synthesizer and discriminators (`synthesizer.py`, `discriminator.py`, building blocks in
`attentions.py`, `modules.py`, `nsf.py`, `commons.py`), voice model files (`voicefile.py`), and the separator
U-Net / RMVPE (owned elsewhere). Import the submodules directly; this package imports nothing (torch is heavy).
"""
