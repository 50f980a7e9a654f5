# S-HR-VQVAE on KittiCaltech (OpenSTL's `kitticaltech`: RGB 128x160, 10 -> 1; trained on KITTI, tested on Caltech).
# Downsampling x4: a 32x40x8 latent per frame; codebook tree 3 layers, M = 8 ({8, 64, 512} codewords).
# 388,347 parameters, 1.664 GFLOPs per sample (fvcore, one (1, 10, 3, 128, 160) input).
# Budget: OpenSTL's KittiCaltech benchmark trains 100 epochs; batch 4 as the KTH config (same token count).
method = 'SHRVQVAE'
dataname = 'kitticaltech'
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
decode_order = 'parallel'
sample_temperature = 0.0
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
