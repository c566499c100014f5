;; Bilinear resizing of uint8 images with 128-bit SIMD, in two passes over fixed-point weights (256 = 1) that
;; bilinear.ts computes: each source row resized horizontally to 16-bit values, then each output row blended from two
;; of those rows. bilinear.ts lays out memory, tables and padding; these functions only follow the tables.
(module
  (memory (export "memory") 1)

  ;; For each of `rows` source rows (`rowBytes` apart from `src`), `groups` groups of eight output values, each value
  ;; a * (256 - w) + b * w (at most 65,280, a u16) of two bytes a and b of the row. A group's bytes lie in a 32-byte
  ;; window of the row; the group's table entry (112 bytes) holds the window's offset in the row (an i32, then 12
  ;; bytes of padding), the swizzle masks picking each lane's a from the window's first and second 16 bytes (a lane
  ;; index of 255 picks zero), the same two masks for b, then the lanes' weights of a and of b (i16x8 each). Row r's
  ;; values go to out + r * outStride, 16 bytes per group.
  (func (export "horizontal") (param $src i32) (param $rowBytes i32) (param $rows i32) (param $groups i32) (param $table i32) (param $out i32) (param $outStride i32)
    (local $r i32) (local $g i32) (local $row i32) (local $entry i32) (local $window i32) (local $to i32) (local $first v128) (local $second v128)
    (loop $eachRow
      (local.set $row (i32.add (local.get $src) (i32.mul (local.get $r) (local.get $rowBytes))))
      (local.set $to (i32.add (local.get $out) (i32.mul (local.get $r) (local.get $outStride))))
      (local.set $entry (local.get $table))
      (local.set $g (i32.const 0))
      (loop $eachGroup
        (local.set $window (i32.add (local.get $row) (i32.load (local.get $entry))))
        (local.set $first (v128.load (local.get $window)))
        (local.set $second (v128.load offset=16 (local.get $window)))
        (v128.store (local.get $to)
          (i16x8.add
            (i16x8.mul
              (v128.or (i8x16.swizzle (local.get $first) (v128.load offset=16 (local.get $entry)))
                       (i8x16.swizzle (local.get $second) (v128.load offset=32 (local.get $entry))))
              (v128.load offset=80 (local.get $entry)))
            (i16x8.mul
              (v128.or (i8x16.swizzle (local.get $first) (v128.load offset=48 (local.get $entry)))
                       (i8x16.swizzle (local.get $second) (v128.load offset=64 (local.get $entry))))
              (v128.load offset=96 (local.get $entry)))))
        (local.set $to (i32.add (local.get $to) (i32.const 16)))
        (local.set $entry (i32.add (local.get $entry) (i32.const 112)))
        (br_if $eachGroup (i32.lt_u (local.tee $g (i32.add (local.get $g) (i32.const 1))) (local.get $groups))))
      (br_if $eachRow (i32.lt_u (local.tee $r (i32.add (local.get $r) (i32.const 1))) (local.get $rows)))))

  ;; Output row y (of `count`, `outRow` bytes each from `out`) from two rows of `horizontal`'s values: its table entry
  ;; (16 bytes) holds the byte offsets of its top and bottom rows from `rows`, and the bottom row's weight w (the top
  ;; row's is 256 - w). Sixteen bytes at a time: a row's last store may run up to 15 bytes past its end.
  (func (export "vertical") (param $rows i32) (param $table i32) (param $count i32) (param $out i32) (param $outRow i32)
    (local $y i32) (local $i i32) (local $top i32) (local $bottom i32) (local $wt v128) (local $wb v128) (local $to i32)
    (local $t v128) (local $b v128) (local $t2 v128) (local $b2 v128) (local $half v128)
    (local.set $half (i32x4.splat (i32.const 32768)))
    (loop $eachRow
      (local.set $top (i32.add (local.get $rows) (i32.load (local.get $table))))
      (local.set $bottom (i32.add (local.get $rows) (i32.load offset=4 (local.get $table))))
      (local.set $wb (i32x4.splat (i32.load offset=8 (local.get $table))))
      (local.set $wt (i32x4.splat (i32.sub (i32.const 256) (i32.load offset=8 (local.get $table)))))
      (local.set $to (i32.add (local.get $out) (i32.mul (local.get $y) (local.get $outRow))))
      (local.set $i (i32.const 0))
      (loop $eachSixteen
        ;; (top * wt + bottom * wb + 32768) >> 16 in i32 lanes, narrowed to bytes (V8 inlines no calls here).
        (local.set $t (v128.load (local.get $top)))
        (local.set $b (v128.load (local.get $bottom)))
        (local.set $t2 (v128.load offset=16 (local.get $top)))
        (local.set $b2 (v128.load offset=16 (local.get $bottom)))
        (v128.store (local.get $to)
          (i8x16.narrow_i16x8_u
            (i16x8.narrow_i32x4_u
              (i32x4.shr_u (i32x4.add (i32x4.add (i32x4.mul (i32x4.extend_low_i16x8_u (local.get $t)) (local.get $wt))
                                 (i32x4.mul (i32x4.extend_low_i16x8_u (local.get $b)) (local.get $wb)))
                      (local.get $half))
              (i32.const 16))
              (i32x4.shr_u (i32x4.add (i32x4.add (i32x4.mul (i32x4.extend_high_i16x8_u (local.get $t)) (local.get $wt))
                                 (i32x4.mul (i32x4.extend_high_i16x8_u (local.get $b)) (local.get $wb)))
                      (local.get $half))
              (i32.const 16)))
            (i16x8.narrow_i32x4_u
              (i32x4.shr_u (i32x4.add (i32x4.add (i32x4.mul (i32x4.extend_low_i16x8_u (local.get $t2)) (local.get $wt))
                                 (i32x4.mul (i32x4.extend_low_i16x8_u (local.get $b2)) (local.get $wb)))
                      (local.get $half))
              (i32.const 16))
              (i32x4.shr_u (i32x4.add (i32x4.add (i32x4.mul (i32x4.extend_high_i16x8_u (local.get $t2)) (local.get $wt))
                                 (i32x4.mul (i32x4.extend_high_i16x8_u (local.get $b2)) (local.get $wb)))
                      (local.get $half))
              (i32.const 16)))))
        (local.set $top (i32.add (local.get $top) (i32.const 32)))
        (local.set $bottom (i32.add (local.get $bottom) (i32.const 32)))
        (local.set $to (i32.add (local.get $to) (i32.const 16)))
        (br_if $eachSixteen (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 16))) (local.get $outRow))))
      (local.set $table (i32.add (local.get $table) (i32.const 16)))
      (br_if $eachRow (i32.lt_u (local.tee $y (i32.add (local.get $y) (i32.const 1))) (local.get $count)))))
)
