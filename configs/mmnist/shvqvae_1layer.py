# S-HR-VQVAE on Moving MNIST, paper Table 1 single-layer variant: 1 layer, M = 64, latent 16x16x4.
# Disjoint training (stage vq, then stage prior) within SimVPv2's Moving-MNIST budget (200 epochs, batch 16).
method = 'SHRVQVAE'
dataname = 'mmnist'
# tokenizer (HR-VQVAE)
vq_layers = 1
vq_codebook_size = 64
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
decode_order = 'parallel'
# decoding: the paper's argmax rollout (tools/leaderboard.py --decodings mean8 adds the MSE-aware one)
sample_temperature = 0.0
# cross-entropy (eq. 7) on every frame after the first, not only the future ones (measured better, see docs/benchmarks.md)
prior_loss_frames = 'all'
# stage schedule (epochs; scaled proportionally when --epoch changes the total)
vq_epochs = 50
prior_epochs = 150
joint_epochs = 0
# training (paper: Adam, lr 3e-4 for both parts)
epoch = 200
batch_size = 16
val_batch_size = 16
lr = 3e-4
sched = 'constant'
