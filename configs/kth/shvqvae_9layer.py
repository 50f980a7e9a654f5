# S-HR-VQVAE on KTH (128x128, 1 channel as OpenSTL loads it, 10 -> 20), paper Table 1 deep variant:
# 9 layers, M = 2 ({2, 4, ..., 512} codewords), latent 32x32x8. Disjoint training within SimVPv2's KTH budget
# (100 epochs; OpenSTL's SimVPv2 KTH config uses batch 4 per GPU on 4 GPUs).
method = 'SHRVQVAE'
dataname = 'kth'
# tokenizer (HR-VQVAE)
vq_layers = 9
vq_codebook_size = 2
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
decode_order = 'parallel'
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
