# S-HR-VQVAE with the paper's raster-order prior head; otherwise the default config on KTH (128x128, 1 channel
# as OpenSTL loads it, 10 -> 20). Paper Table 1 default: 3 layers, M = 8 ({8, 64, 512} codewords), latent
# 32x32x8. Disjoint training within SimVPv2's KTH budget (100 epochs; OpenSTL's SimVPv2 KTH config uses
# batch 4 per GPU on 4 GPUs).
# Identical to shvqvae.py except decode_order; prediction costs about 8x the parallel order's.
method = 'SHRVQVAE'
dataname = 'kth'
# tokenizer (HR-VQVAE)
vq_layers = 3
vq_codebook_size = 8
vq_latent_dim = 8
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
decode_order = 'raster'  # the paper's order: positions in raster order, layers coarse-to-fine at each
# decoding: the paper's argmax rollout (tools/leaderboard.py --decodings mean8 adds the MSE-aware one)
sample_temperature = 0.0
# cross-entropy (eq. 7) on every frame after the first, not only the future ones (measured better, see docs/benchmarks.md)
prior_loss_frames = 'all'
# stage schedule (epochs; scaled proportionally when --epoch changes the total)
vq_epochs = 25
prior_epochs = 75
joint_epochs = 0
# training (paper: Adam, lr 3e-4 for both parts)
epoch = 100
batch_size = 4
val_batch_size = 4
lr = 3e-4
sched = 'constant'
