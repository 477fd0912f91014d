package org.lora4j.train.optim;

import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.Arrays;
import java.util.Objects;

/**
 * A trainable tensor and its accumulated gradient, addressed by a stable name (a Hugging Face
 * parameter name, or a PEFT adapter key) that checkpoints use to match optimizer state.
 *
 * @param name  e.g. {@code model.layers.2.mlp.down_proj.lora_B.weight}
 * @param value updated in place by the optimizer
 * @param grad  same shape as value; read by the optimizer, zeroed by the trainer
 */
public record Parameter(String name, INDArray value, INDArray grad) {
    public Parameter {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(value, name + ": value");
        Objects.requireNonNull(grad, name + ": grad");
        if (!Arrays.equals(value.shape(), grad.shape())) {
            throw new IllegalArgumentException(name + ": gradient shape " + Arrays.toString(grad.shape())
                    + " differs from parameter shape " + Arrays.toString(value.shape()));
        }
    }
}
