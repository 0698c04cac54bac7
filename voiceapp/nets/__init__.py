"""Networks: the RVC synthesizer and discriminators (`synthesizer.py`, `discriminator.py`, building blocks in
`attentions.py`, `modules.py`, `nsf.py`, `commons.py`), the separator U-Net and RMVPE. Pure networks: nothing
here imports a stage (voice files live in `voiceapp.voices`). Import the submodules directly; this package
imports nothing (torch is heavy).
"""
