# The quick config trained as the paper trains for its argmax decoding: the tokenizer's epoch, five prior epochs and
# one joint epoch (eq. 9: the prior and the decoder learn together on argmax rollouts), the same 448 steps.
# The decoder learns to render the prior's own uncertain codes, so the argmax rollout stays below a blank frame at
# every predicted frame; the mean of samples scores better with the disjoint quick config (docs/benchmarks.md).
_base_ = ['./shvqvae_quick.py']
# stage schedule: the quick config's tokenizer epoch, then 5 prior epochs and 1 joint epoch (64 steps)
prior_epochs = 5
joint_epochs = 1
joint_lambda = 0.11
# decoding, and the joint stage's rollouts (decoded as at test time): the paper's argmax
sample_temperature = 0.0
decoding_samples = 1
