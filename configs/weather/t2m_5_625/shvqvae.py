# S-HR-VQVAE on WeatherBench 2 m temperature at 5.625 deg (OpenSTL's `weather_t2m_5_625`: 32x64, 12 -> 12 hours).
# OpenSTL's loader z-scores the temperatures, so values lie far outside [0, 1].
# Downsampling x4: an 8x16x8 latent per frame; codebook tree 3 layers, M = 8 ({8, 64, 512} codewords).
# 386,913 parameters, 0.435 GFLOPs per sample (fvcore, one (1, 12, 1, 32, 64) input).
# Budget: OpenSTL's WeatherBench benchmark trains 50 epochs.
method = 'SHRVQVAE'
dataname = 'weather_t2m_5_625'
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
# no fixed value range: the decoder's output is not clamped (the image datasets' [0, 1] would cut the z-scores)
vq_value_range = None
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
