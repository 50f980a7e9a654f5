# S-HR-VQVAE on TaxiBJ (OpenSTL's `taxibj`: inflow/outflow, 2 channels, 32x32, 4 -> 4).
# Downsampling x4: an 8x8x8 latent per frame; codebook tree 3 layers, M = 8 ({8, 64, 512} codewords), the
# KTH choice: two flow channels need more codes per position than binary-looking digits.
# 387,554 parameters, 0.073 GFLOPs per sample (fvcore, one (1, 4, 2, 32, 32) input).
# Budget: OpenSTL's TaxiBJ benchmark trains 50 epochs; stages 1:3 as on Moving MNIST.
method = 'SHRVQVAE'
dataname = 'taxibj'
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
vq_epochs = 13
prior_epochs = 37
joint_epochs = 0
# training (paper: Adam, lr 3e-4 for both parts)
epoch = 50
batch_size = 16
val_batch_size = 16
lr = 3e-4
sched = 'constant'
