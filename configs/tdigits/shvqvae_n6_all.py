# S-HR-VQVAE on the transformed-digit interpolation/extrapolation task (SimVPv2 study),
# trained on n6-all: the n6 windows plus reversed, noisy and missing-frame copies.
# 4 -> 4 frames of 36x36 (9x9x4 latent); paper Moving-MNIST widths, 3 layers, M = 4 ({4, 16, 64} codewords).
# The study's budget: 500 epochs, batch 16; the stages keep the Moving-MNIST config's 1:3 split.
method = 'SHRVQVAE'
dataname = 'tdigits_all'
# tokenizer (HR-VQVAE)
vq_layers = 3
vq_codebook_size = 4
vq_latent_dim = 4
vq_hidden = 64
vq_res_hidden = 32
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
sample_temperature = 0.0
# stage schedule (epochs; scaled proportionally when --epoch changes the total)
vq_epochs = 125
prior_epochs = 375
joint_epochs = 0
# training (paper: Adam, lr 3e-4 for both parts)
epoch = 500
batch_size = 16
val_batch_size = 16
lr = 3e-4
sched = 'constant'
