package org.lora4j.core;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.Arrays;
import java.util.Objects;

/**
 * One named adapter on one {@link LoraLinear}: the trainable pair {@code a} [rank, in] and
 * {@code b} [out, rank], their gradients, and the inference-time multiplier on B.
 *
 * <p>The arrays are owned here and updated in place by optimizers; their shapes never change.
 * Gradients accumulate (backward adds into them); the trainer zeroes them.
 */
public final class LoraAdapter {
    private final String name;
    private final LoraConfig config;
    private final INDArray a;      // [rank, in]
    private final INDArray b;      // [out, rank]
    private final INDArray gradA;  // [rank, in], 'f' because gemm writes into it
    private final INDArray gradB;  // [out, rank], 'f'
    private double multiplier = 1.0;

    LoraAdapter(String name, LoraConfig config, INDArray a, INDArray b) {
        this.name = Objects.requireNonNull(name, "name");
        this.config = Objects.requireNonNull(config, "config");
        if (a.rank() != 2 || b.rank() != 2 || a.size(0) != config.rank() || b.size(1) != config.rank()) {
            throw new IllegalArgumentException("adapter '" + name + "': expected A [" + config.rank()
                    + ", in] and B [out, " + config.rank() + "], got A " + Arrays.toString(a.shape())
                    + " and B " + Arrays.toString(b.shape()));
        }
        this.a = a;
        this.b = b;
        this.gradA = Nd4j.zeros(a.dataType(), a.shape()).dup('f');
        this.gradB = Nd4j.zeros(b.dataType(), b.shape()).dup('f');
    }

    public String name() {
        return name;
    }

    public LoraConfig config() {
        return config;
    }

    public int rank() {
        return config.rank();
    }

    /** lora_A weight, [rank, in]. Mutable in place (an optimizer step); never reassigned. */
    public INDArray a() {
        return a;
    }

    /** lora_B weight, [out, rank]. Mutable in place; never reassigned. */
    public INDArray b() {
        return b;
    }

    /** Accumulated gradient of the loss with respect to {@link #a()}, [rank, in]. */
    public INDArray gradA() {
        return gradA;
    }

    /** Accumulated gradient of the loss with respect to {@link #b()}, [out, rank]. */
    public INDArray gradB() {
        return gradB;
    }

    /** alpha/rank, or alpha/sqrt(rank) with rsLoRA. */
    public double scaling() {
        return config.scaling();
    }

    /**
     * The factor applied to B at inference (docs/research.md: scaling B x5 makes the behavioural
     * transition line up with the rotation). 1 by default; 0 turns the adapter off.
     */
    public double multiplier() {
        return multiplier;
    }

    public void setMultiplier(double multiplier) {
        if (!Double.isFinite(multiplier)) {
            throw new IllegalArgumentException("adapter '" + name + "': multiplier must be finite, got " + multiplier);
        }
        this.multiplier = multiplier;
    }

    /** Sets both gradients to zero. */
    public void zeroGrad() {
        gradA.assign(0);
        gradB.assign(0);
    }

    /**
     * Projects a direction out of B's column space, in place: {@code B <- B - r (rᵀ B)} with
     * {@code r = direction / ‖direction‖}, optionally rescaling B to its previous Frobenius norm
     * (the weight-space ablation of docs/research.md).
     *
     * @param direction [out] or [out, 1] or [1, out]; need not be unit length, must not be zero
     * @param keepNorm  whether to rescale B to its norm before the projection
     */
    public void projectOutOfB(INDArray direction, boolean keepNorm) {
        long out = b.size(0);
        if (direction.length() != out) {
            throw new IllegalArgumentException("adapter '" + name + "': direction has " + direction.length()
                    + " elements, B has " + out + " rows");
        }
        INDArray r = direction.reshape(out, 1).castTo(DataType.DOUBLE);
        double norm = r.norm2Number().doubleValue();
        if (!(norm > 0) || !Double.isFinite(norm)) {
            throw new IllegalArgumentException("adapter '" + name + "': direction must be finite and non-zero, norm " + norm);
        }
        r.divi(norm);
        INDArray bd = b.castTo(DataType.DOUBLE);
        double before = bd.norm2Number().doubleValue();
        INDArray coef = Nd4j.create(DataType.DOUBLE, new long[]{1, bd.size(1)}, 'f');
        Nd4j.gemm(r, bd, coef, true, false, 1.0, 0.0);                  // rᵀ B      [1, rank]
        INDArray bf = bd.dup('f');
        Nd4j.gemm(r, coef, bf, false, false, -1.0, 1.0);                // B - r (rᵀ B)
        bd = bf;
        if (keepNorm) {
            double after = bd.norm2Number().doubleValue();
            if (after > 0) {
                bd.muli(before / after);
            }
        }
        b.assign(bd.castTo(b.dataType()));
    }
}
