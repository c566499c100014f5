import sharp from 'sharp';

/** An uncompressed 24-bit BMP (sharp writes none) of raw RGB pixels: bottom-up BGR rows padded to 4 bytes. */
export function bmp(rgb: Uint8Array, width: number, height: number): Buffer {
  const rowBytes = Math.ceil((width * 3) / 4) * 4;
  const file = Buffer.alloc(54 + rowBytes * height);
  file.write('BM', 0, 'latin1');
  file.writeUInt32LE(file.length, 2);
  file.writeUInt32LE(54, 10);
  file.writeUInt32LE(40, 14);
  file.writeInt32LE(width, 18);
  file.writeInt32LE(height, 22);
  file.writeUInt16LE(1, 26);
  file.writeUInt16LE(24, 28);
  file.writeUInt32LE(rowBytes * height, 34);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const from = (y * width + x) * 3;
      const to = 54 + (height - 1 - y) * rowBytes + x * 3;
      [file[to], file[to + 1], file[to + 2]] = [rgb[from + 2]!, rgb[from + 1]!, rgb[from]!];
    }
  }
  return file;
}

/**
 * Photo-like RGBA pixels: smooth gradients, a soft-edged disc and a half-transparent band on the left, so resizing,
 * colour conversion and alpha flattening all show.
 */
export function photoLike(width: number, height: number, bandAlpha = 128): Uint8Array {
  const pixels = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 4;
      const disc = Math.min(1, Math.max(0, 1.5 - Math.hypot(x - width * 0.6, y - height * 0.5) / (height * 0.25)));
      pixels[i] = Math.round((x / width) * 200 * (1 - disc) + 250 * disc);
      pixels[i + 1] = Math.round((y / height) * 220 * (1 - disc) + 230 * disc);
      pixels[i + 2] = Math.round((128 + 90 * Math.sin(x / 9) * Math.cos(y / 7)) * (1 - disc) + 30 * disc);
      pixels[i + 3] = x < width / 5 ? bandAlpha : 255;
    }
  }
  return pixels;
}

/** The same picture in every format and variant the decoders tell apart, keyed by a short name. */
export async function formatMatrix(width: number, height: number): Promise<Record<string, Buffer>> {
  const rgba = sharp(photoLike(width, height), { raw: { width, height, channels: 4 } });
  const rgb = rgba.clone().flatten({ background: '#000' });
  const rgbPixels = await rgb.clone().raw().toBuffer();
  return {
    'png rgb': await rgb.clone().png().toBuffer(),
    'png rgba': await rgba.clone().png().toBuffer(),
    'png gray': await rgb.clone().toColourspace('b-w').png().toBuffer(),
    'png palette': await rgb.clone().png({ palette: true }).toBuffer(),
    'png interlaced': await rgb.clone().png({ progressive: true }).toBuffer(),
    'jpeg baseline': await rgb.clone().jpeg({ quality: 90 }).toBuffer(),
    'jpeg progressive': await rgb.clone().jpeg({ quality: 90, progressive: true }).toBuffer(),
    'jpeg gray': await rgb.clone().toColourspace('b-w').jpeg({ quality: 90 }).toBuffer(),
    gif: await rgb.clone().gif().toBuffer(),
    bmp: bmp(rgbPixels, width, height),
    'gif transparent': await sharp(photoLike(width, height, 0), { raw: { width, height, channels: 4 } }).gif().toBuffer(),
    'gif animated': withoutGifTransparency(await sharp([await rgb.clone().png().toBuffer(), await rgb.clone().negate().png().toBuffer()], { join: { animated: true } }).gif().toBuffer()),
    webp: await rgb.clone().webp().toBuffer(),
    tiff: await rgb.clone().tiff().toBuffer(),
    avif: await rgb.clone().avif().toBuffer(),
    'png 16-bit': await rgb.clone().toColourspace('rgb16').png().toBuffer(),
    'jpeg cmyk': await rgb.clone().toColourspace('cmyk').jpeg().toBuffer(),
    'jpeg exif-rotated': await rgb.clone().withMetadata({ orientation: 6 }).jpeg().toBuffer(),
    'jpeg icc profile': await rgb.clone().withIccProfile('p3').jpeg().toBuffer(),
  };
}

/** The GIF with the transparency flag of every graphic control extension cleared (sharp sets it on every GIF it writes). */
function withoutGifTransparency(gif: Buffer): Buffer {
  const out = Buffer.from(gif);
  for (let at = out.indexOf(GRAPHIC_CONTROL); at >= 0; at = out.indexOf(GRAPHIC_CONTROL, at + 1)) out[at + 3]! &= 0xfe;
  return out;
}

const GRAPHIC_CONTROL = Buffer.from([0x21, 0xf9, 0x04]);
