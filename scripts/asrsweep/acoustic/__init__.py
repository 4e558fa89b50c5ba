"""The CTC acoustic model: batching, training and cached emissions."""
