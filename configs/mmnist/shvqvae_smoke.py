# Smoke test of S-HR-VQVAE on Moving MNIST: the quick config's tree, trained 96 steps (152 CPU-seconds in all).
# It checks that everything runs (data, both training stages, checkpoints, test, pictures), not quality:
# after 96 steps the prediction is a faint cloud where the digits go (configs/mmnist/shvqvae_quick.py learns).
method = 'SHRVQVAE'
dataname = 'mmnist'
# tokenizer (HR-VQVAE): the paper's default tree, 3 layers, M = 4, latent 16x16x4
vq_layers = 3
vq_codebook_size = 4
vq_latent_dim = 4
vq_hidden = 48
vq_res_hidden = 24
vq_res_blocks = 2
vq_beta = 0.25
vq_ema = True
vq_decay = 0.99
# prior (ST-PixelCNN)
prior_hidden = 64
prior_blocks = 4
prior_heads = 4
prior_kernel = 3
prior_local_blocks = 0
decode_order = 'parallel'
# decoding: the mean of 4 rollouts sampled at T = 1
sample_temperature = 1.0
decoding_samples = 4
# stage schedule (epochs of 384 sequences = 24 steps)
vq_frames = 4
vq_epochs = 2
prior_epochs = 2
joint_epochs = 0
prior_loss_frames = 'all'
# training
epoch = 4
batch_size = 16
val_batch_size = 16
lr = 1e-3
sched = 'constant'
# CPU budget: 384 training sequences per epoch, 2 validation batches, 64 test sequences
train_size = 384
test_size = 64
limit_val_batches = 2
num_workers = 2
