"""Feature extraction: f0 methods and content encoders behind registries, and the extraction stage.

Importing this package loads no model; the heavy libraries are imported on first use.
"""

from voiceapp.features.encoders import (ENCODERS, ContentEncoder, available_encoders, default_encoder, encoder_dim,
                                        load_encoder)
from voiceapp.features.extract import (FeatureConfig, FeatureSet, extract_features, feature_paths,
                                       load_clip_features, load_feature_manifest)
from voiceapp.features.f0 import (F0_HOP, F0_MAX_HZ, F0_METHODS, F0_MIN_HZ, F0_RATE_HZ, F0Method,
                                  available_f0_methods, check_f0_method, coarse_f0, default_f0_method, f0_csv,
                                  load_f0_method, n_f0_frames, read_f0_csv)

__all__ = ["ENCODERS", "F0_HOP", "F0_MAX_HZ", "F0_METHODS", "F0_MIN_HZ", "F0_RATE_HZ", "ContentEncoder",
           "F0Method", "FeatureConfig", "FeatureSet", "available_encoders", "available_f0_methods",
           "check_f0_method", "coarse_f0", "default_encoder", "default_f0_method", "encoder_dim",
           "extract_features", "f0_csv", "feature_paths", "load_clip_features", "load_encoder",
           "load_f0_method", "load_feature_manifest", "n_f0_frames", "read_f0_csv"]
