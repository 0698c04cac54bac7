"""Training of RVC voice models: data, losses, the loop, checkpoints, the child process, DDP.

Import the submodules you need (`voiceapp.train.loop.train`, `voiceapp.train.config.TrainConfig`);
this package imports nothing heavy by itself.
"""
