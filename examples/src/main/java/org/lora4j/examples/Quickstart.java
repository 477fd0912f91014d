package org.lora4j.examples;

import org.lora4j.core.LoraAdapter;
import org.lora4j.core.LoraConfig;
import org.lora4j.core.LoraLinear;
import org.lora4j.core.PeftAdapters;
import org.lora4j.core.PeftKeys;
import org.lora4j.train.optim.Optimizer;
import org.lora4j.train.optim.Parameter;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * The smallest complete use of lora-core: a frozen linear layer, a teacher that differs from it by
 * a known rank-2 change, and a LoRA adapter trained with Adam to recover that change, saved in
 * PEFT's format. It runs in seconds on built-in defaults and prints how close the adapter got.
 */
final class Quickstart {
    private static final Logger log = LoggerFactory.getLogger(Quickstart.class);
    static final String MODULE = "model.layers.0.mlp.down_proj";

    private Quickstart() {
    }

    /** What the quickstart's adapter is recorded as fitted to: its own synthetic layer, not a hub model. */
    static final String DEFAULT_BASE_MODEL = "lora4j-quickstart-teacher";

    /** The run's settings; each default is small enough to finish in seconds on two cores. */
    record Settings(int rank, double alpha, int steps, double lr, long seed, Path out, String baseModelName) {
        Settings(int rank, double alpha, int steps, double lr, long seed, Path out) {
            this(rank, alpha, steps, lr, seed, out, DEFAULT_BASE_MODEL);
        }
    }

    @picocli.CommandLine.Command(name = "quickstart", mixinStandardHelpOptions = true, sortOptions = false,
            header = "fit a LoRA adapter to a known low-rank change and save it in PEFT format",
            description = "lora4j quickstart: fit a LoRA adapter to a known rank-2 change of a linear layer, and save"
                    + " it in PEFT's format with " + RunConfig.FILE_NAME + ".json beside it.")
    static final class Command implements Callable<Integer> {
        @Spec
        CommandSpec spec;
        @Mixin
        RunConfig.ConfigOption config;
        @Option(names = "--rank", paramLabel = "N", description = "adapter rank (default ${DEFAULT-VALUE}; the change has rank 2)")
        int rank = 4;        // > the teacher's rank 2, so recovery is possible
        @Option(names = "--alpha", paramLabel = "X", description = "lora_alpha (default ${DEFAULT-VALUE})")
        double alpha = 8;
        @Option(names = "--steps", paramLabel = "N", description = "Adam steps (default ${DEFAULT-VALUE})")
        int steps = 300;
        @Option(names = "--lr", paramLabel = "X", description = "learning rate (default ${DEFAULT-VALUE})")
        double lr = 0.02;
        @Option(names = "--seed", paramLabel = "N", description = "seed for data and initialisation (default ${DEFAULT-VALUE})")
        long seed = 0;
        @Option(names = "--out", paramLabel = "DIR", description = "where the PEFT adapter is written (default ${DEFAULT-VALUE})")
        Path out = Path.of("out/quickstart");
        @Option(names = "--base-model-name", paramLabel = "NAME", description = "base_model_name_or_path in adapter_config.json (default ${DEFAULT-VALUE})")
        String baseModelName = DEFAULT_BASE_MODEL;

        @Override
        public Integer call() throws IOException {
            Settings s = new Settings(Cli.atLeast("--rank", rank, 1), alpha, Cli.atLeast("--steps", steps, 1), lr, seed,
                    out, baseModelName);
            RunConfig.write(spec, config.file, out);
            Quickstart.run(s);
            return 0;
        }
    }

    static double run(Settings s) throws IOException {
        int in = 48, out = 64, n = 512;
        Nd4j.getRandom().setSeed(s.seed());
        INDArray w = Nd4j.randn(DataType.FLOAT, out, in).divi(Math.sqrt(in));              // [out, in]
        INDArray delta = Nd4j.randn(DataType.FLOAT, out, 2).mmul(Nd4j.randn(DataType.FLOAT, 2, in)).muli(0.1);
        INDArray x = Nd4j.randn(DataType.FLOAT, n, in);                                    // [n, in]
        INDArray target = x.mmul(w.add(delta).transpose());                               // [n, out]

        LoraConfig config = LoraConfig.of(s.rank(), s.alpha(), "down_proj");
        LoraLinear layer = new LoraLinear(MODULE, w, null);
        LoraAdapter adapter = layer.addAdapter("default", config, s.seed());
        layer.setTraining(true);

        // The library's AdamW, with no weight decay.
        Optimizer adam = Optimizer.adamw(List.of(
                new Parameter(PeftKeys.inMemory(MODULE, PeftKeys.Factor.A, adapter.name()), adapter.a(), adapter.gradA()),
                new Parameter(PeftKeys.inMemory(MODULE, PeftKeys.Factor.B, adapter.name()), adapter.b(), adapter.gradB())), 0.0);

        INDArray y = Nd4j.create(DataType.FLOAT, new long[]{n, out}, 'f');
        INDArray dy = Nd4j.create(DataType.FLOAT, new long[]{n, out}, 'f');
        double loss = Double.NaN;
        for (int step = 1; step <= s.steps(); step++) {
            adam.zeroGrad();
            layer.forward(x, y);
            dy.assign(y).subi(target);                                 // residual
            loss = dy.norm2Number().doubleValue();
            loss = loss * loss / (n * out);                            // mean squared error
            dy.muli(2.0 / (n * out));                                  // dL/dy
            if (!Double.isFinite(loss)) {
                throw new IllegalStateException("loss became " + loss + " at step " + step + "; lower --lr");
            }
            layer.backward(dy, null);
            adam.step(s.lr());
            if (step == 1 || step % 50 == 0 || step == s.steps()) {
                log.info("step {}/{}  mse {}", step, s.steps(), String.format("%.6f", loss));
            }
        }
        INDArray learned = adapter.b().mmul(adapter.a()).muli(adapter.scaling());
        double relError = learned.sub(delta).norm2Number().doubleValue() / delta.norm2Number().doubleValue();

        Map<String, String> provenance = new LinkedHashMap<>();
        provenance.put("lora4j_command", "quickstart");
        provenance.put("seed", Long.toString(s.seed()));
        provenance.put("settings", s.toString());
        PeftAdapters.save(s.out(), config, Map.of(MODULE, adapter), s.baseModelName(), provenance);
        log.info("final mse {}; ‖scaling·B·A − ΔW‖ / ‖ΔW‖ = {}", String.format("%.6f", loss), String.format("%.4f", relError));
        log.info("PEFT adapter written to {}", s.out().toAbsolutePath());
        return relError;
    }
}
