# S-HR-VQVAE on Moving Fashion-MNIST (OpenSTL's `mfmnist`: 64x64, 1 channel, 10 -> 10), the Moving MNIST
# config (paper Table 1). Downsampling x4: a 16x16x4 latent per frame; codebook tree 3 layers, M = 4
# ({4, 16, 64} codewords).
# 364,225 parameters, 0.720 GFLOPs per sample (fvcore, one (1, 10, 1, 64, 64) input).
# Budget: OpenSTL's MFMNIST benchmark trains 200 epochs.
method = 'SHRVQVAE'
dataname = 'mfmnist'
# tokenizer (HR-VQVAE)
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
decode_order = 'parallel'
sample_temperature = 0.0
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
