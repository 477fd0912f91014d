package org.lora4j.examples;

import org.lora4j.train.text.TextFiles;
import org.lora4j.core.AtomicFiles;
import org.lora4j.core.PeftAdapter;
import org.lora4j.core.PeftAdapters;
import org.lora4j.train.directions.ContrastSet;
import org.lora4j.train.directions.DirectionComparison;
import org.lora4j.train.directions.Directions;
import org.lora4j.train.directions.MeanDifference;
import org.lora4j.train.directions.Pooling;
import org.lora4j.train.model.DecoderModel;
import org.lora4j.train.text.Tokenizer;
import org.lora4j.train.text.Tokenizers;
import org.lora4j.train.trainer.RunDirectory;
import org.lora4j.train.trainer.Version;
import org.nd4j.linalg.api.ndarray.INDArray;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;

import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * {@code lora4j direction} and {@code lora4j compare-directions} (docs/research.md, "Directions,
 * steering and ablation"); the hook options of the commands that run a model are {@link HookOptions}.
 */
final class DirectionCommands {
    private DirectionCommands() {
    }

    // ---------------------------------------------------------------------------------------------
    // direction

    @Command(name = "direction", mixinStandardHelpOptions = true, sortOptions = false,
            header = "the mean-difference direction per layer between two sets of examples",
            description = "lora4j direction: the mean-difference direction of the residual stream, per layer, between"
                    + " two sets of examples: v_l = mean(positive) - mean(negative), each mean over tokens, in double."
                    + " The resolved options are written beside --out as <name>." + RunConfig.FILE_NAME + ".json.")
    static final class Direction implements Callable<Integer> {
        @Spec
        CommandSpec spec;
        @Mixin
        RunConfig.ConfigOption config;
        @Option(names = "--model", paramLabel = "DIR", description = "Hugging Face layout model directory (required)")
        Path model;
        @Option(names = "--adapter", paramLabel = "DIR", description = "a PEFT adapter to apply first (optional; e.g. the misaligned fine-tune)")
        Path adapter;
        @Option(names = "--positive", paramLabel = "FILE.jsonl", description = "chat lines {\"messages\": [...]} as sft"
                + " takes, or the samples.jsonl lines lora4j eval writes ({\"question\", \"answer\", \"label\", ...}) (required)")
        Path positive;
        @Option(names = "--negative", paramLabel = "FILE.jsonl", description = "the same forms; may be the --positive file (required)")
        Path negative;
        @Option(names = "--positive-label", paramLabel = "L[,L]", split = ",", hideParamSyntax = true, description = "keep only the lines whose \"label\" is one of these (e.g. misaligned)")
        List<String> positiveLabel;
        @Option(names = "--negative-label", paramLabel = "L[,L]", split = ",", hideParamSyntax = true, description = "likewise for --negative (e.g. aligned)")
        List<String> negativeLabel;
        @Option(names = "--pooling", paramLabel = "answer|last-prompt[:k]", description = "answer: the assistant tokens"
                + " the SFT loss scores (default); last-prompt:k: the last k positions of the prompt, generation header"
                + " included (the refusal-direction form; k defaults to 1)")
        String pooling = "answer";
        @Option(names = "--layers", paramLabel = "all|L,L", description = "layers (0-based; layer l is the stream after block l) (default ${DEFAULT-VALUE})")
        String layers = "all";
        @Option(names = "--balance", description = "subsample the larger set, by examples, to the smaller one's size (seeded)")
        boolean balance;
        @Option(names = "--seed", paramLabel = "N", description = "for --balance; recorded in the file (default ${DEFAULT-VALUE})")
        long seed = 0;
        @Option(names = "--batch-size", paramLabel = "N", description = "examples per forward (default ${DEFAULT-VALUE}; changes the result by float rounding only)")
        int batchSize = MeanDifference.DEFAULT_BATCH;
        @Option(names = "--out", paramLabel = "FILE.safetensors", description = "one F32 [d_model] tensor per layer, keyed"
                + " layers.<l>, with the sets' sha256, token counts, pooling, model and seed in __metadata__ (written"
                + " atomically; its directory is created) (required)")
        Path out;
        @Option(names = "--overwrite", description = "replace an existing --out")
        boolean overwrite;

        @Override
        public Integer call() throws IOException {
            return direction(this);
        }
    }

    static int direction(Direction c) throws IOException {
        Path modelDir = Cli.required(c.model, "--model");
        String adapter = c.adapter == null ? null : c.adapter.toString();
        Path positive = Cli.required(c.positive, "--positive");
        Path negative = Cli.required(c.negative, "--negative");
        Set<String> posLabels = labels(c.positiveLabel, "--positive-label");
        Set<String> negLabels = labels(c.negativeLabel, "--negative-label");
        Pooling pooling = Pooling.parse(c.pooling);
        List<Integer> layers = layers(Cli.nonBlank("--layers", c.layers, "all or layer numbers like 0,3"));
        boolean balance = c.balance;
        long seed = c.seed;
        int batch = Cli.atLeast("--batch-size", c.batchSize, 1);
        String outName = Cli.required(c.out, "--out").toString();
        boolean overwrite = c.overwrite;
        Path out = Path.of(outName);
        if (!outName.endsWith(".safetensors")) {
            throw new IllegalArgumentException("--out " + out + " must name a .safetensors file");
        }
        if (Files.isDirectory(out)) {
            throw new IllegalArgumentException("--out " + out + " is a directory; give a file such as "
                    + out.resolve("direction.safetensors"));
        }
        if (Files.exists(out) && !overwrite) {
            throw new IllegalArgumentException("--out " + out + " exists; add --overwrite to replace it, or choose another file");
        }
        for (Path in : List.of(positive, negative)) {
            if (Files.exists(out) && Files.exists(in) && Files.isSameFile(in, out)) {
                throw new IllegalArgumentException("--out " + out + " is an input (" + in + ")");
            }
        }
        if (posLabels != null && negLabels != null && positive.equals(negative) && !java.util.Collections.disjoint(posLabels, negLabels)) {
            throw new IllegalArgumentException("--positive-label and --negative-label share " + intersection(posLabels, negLabels)
                    + " on one file: the two sets would overlap");
        }
        Path parent = out.toAbsolutePath().getParent();
        if (Files.exists(parent) && !Files.isDirectory(parent)) {
            throw new IllegalArgumentException("--out " + out + ": " + parent + " is a file, not a directory");
        }
        Files.createDirectories(parent);   // before the work, so a path that cannot be made fails first
        Tokenizer tok = Tokenizers.load(modelDir);
        DecoderModel model = Commands.loadWithAdapter(modelDir, adapter);
        int context = model.config().maxPositionEmbeddings();
        ContrastSet pos = ContrastSet.load(positive, tok, pooling, posLabels, context);
        ContrastSet neg = ContrastSet.load(negative, tok, pooling, negLabels, context);
        Map<String, String> prov = new LinkedHashMap<>();
        prov.put("command", "direction");
        prov.put("model", modelDir.toString());
        if (adapter != null) {
            prov.put("adapter", adapter);
        }
        if (posLabels != null) {
            prov.put("positive_label", String.join(",", posLabels));
        }
        if (negLabels != null) {
            prov.put("negative_label", String.join(",", negLabels));
        }
        Directions d;
        try {
            d = MeanDifference.compute(model, pos, neg, pooling, layers, balance, seed, batch, prov);
        } catch (IllegalArgumentException e) {
            throw layers.isEmpty() || !e.getMessage().startsWith("layer ") ? e
                    : new IllegalArgumentException("--layers " + String.join(",", layers.stream().map(String::valueOf).toList())
                    + ": " + e.getMessage(), e);
        }
        d.write(out);
        // Beside the file, and only once it is written: the directory may hold other runs' files.
        RunConfig.write(c.spec, c.config.file, parent,
                out.getFileName().toString().replaceFirst("\\.safetensors$", "") + "." + RunConfig.FILE_NAME);
        ObjectNode o = new ObjectMapper().createObjectNode();
        o.put("out", out.toAbsolutePath().toString());
        o.put("pooling", pooling.toString());
        o.put("positive_examples", Integer.parseInt(d.metadata().get("positive_examples")));
        o.put("positive_tokens", Long.parseLong(d.metadata().get("positive_tokens")));
        o.put("negative_examples", Integer.parseInt(d.metadata().get("negative_examples")));
        o.put("negative_tokens", Long.parseLong(d.metadata().get("negative_tokens")));
        ObjectNode norms = o.putObject("norms");
        for (int l : d.layers()) {
            norms.put(Integer.toString(l), d.norm(l));
        }
        System.out.println(o);
        return 0;
    }

    private static Set<String> labels(List<String> v, String option) {
        if (v == null) {
            return null;
        }
        Set<String> s = new LinkedHashSet<>();
        for (String p : v) {
            if (p.isBlank()) {
                throw new IllegalArgumentException(v.size() == 1 ? option + " is empty; give labels such as misaligned,"
                        + " or leave the option out" : option + " has an empty label in '" + String.join(",", v) + "'");
            }
            s.add(p.trim());
        }
        return s;
    }

    private static Set<String> intersection(Set<String> a, Set<String> b) {
        Set<String> s = new LinkedHashSet<>(a);
        s.retainAll(b);
        return s;
    }

    /** "all" is the empty list, every layer of the model. */
    private static List<Integer> layers(String s) {
        List<Integer> out = new ArrayList<>();
        if (s.trim().equalsIgnoreCase("all")) {
            return out;
        }
        for (String p : s.split(",", -1)) {
            try {
                out.add(Integer.parseInt(p.trim()));
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("--layers must be all or layer numbers separated by commas, got '" + s + "'");
            }
        }
        return out;
    }

    // ---------------------------------------------------------------------------------------------
    // compare-directions

    @Command(name = "compare-directions", mixinStandardHelpOptions = true, sortOptions = false,
            header = "per-layer cosines of two direction files (and an adapter's B)",
            description = {"lora4j compare-directions A.safetensors B.safetensors: how two direction files agree, per"
                    + " layer (cos(v_l^A, v_l^B), signed and absolute; both files must hold the same layers and width).",
                    "Prints the result as one JSON line."})
    static final class Compare implements Callable<Integer> {
        @Parameters(paramLabel = "FILE", description = "the two directions files lora4j direction wrote")
        List<Path> files = new ArrayList<>();
        @Option(names = "--adapter", paramLabel = "DIR", description = "also the cosine of each column of the adapter's B"
                + " (o_proj and down_proj, which write the residual stream) with its layer's direction")
        Path adapter;
        @Option(names = "--out", paramLabel = "DIR", description = "also write there (a new or empty directory)"
                + " compare.json, layers.csv, cosines.png (per-layer bars, data in cosines.csv) and, with --adapter,"
                + " adapter_columns.png (and .csv)")
        Path out;
        @Option(names = "--overwrite", description = "replace what an earlier compare-directions wrote in --out")
        boolean overwrite;

        @Override
        public Integer call() throws IOException {
            return compare(this);
        }
    }

    /** cosines.png (per-layer cosines) and, with an adapter, adapter_columns.png; each with its CSV. */
    private static void plot(Path out, Path fa, Path fb, List<DirectionComparison.LayerCosine> layers, String adapter,
                             List<DirectionComparison.AdapterCosine> colsA, List<DirectionComparison.AdapterCosine> colsB) {
        List<String> cats = new ArrayList<>();
        double[] x = new double[layers.size()];
        double[] signed = new double[layers.size()];
        double[] abs = new double[layers.size()];
        for (int i = 0; i < layers.size(); i++) {
            cats.add(Integer.toString(layers.get(i).layer()));
            x[i] = layers.get(i).layer();
            signed[i] = layers.get(i).cosine();
            abs[i] = layers.get(i).absCosine();
        }
        String run = fa.getFileName() + " vs " + fb.getFileName();
        Plots.bars(out.resolve("cosines.png"), "Per-layer cosine of two directions: " + run,
                "layer l (residual stream after block l)", "cos(v_l^A, v_l^B) (unitless)", cats,
                List.of(Plots.series("signed", x, signed), Plots.series("absolute", x, abs)));
        if (colsA != null) {
            List<String> c = new ArrayList<>();
            double[] cx = new double[colsA.size()];
            double[] ya = new double[colsA.size()];
            double[] yb = new double[colsA.size()];
            for (int i = 0; i < colsA.size(); i++) {
                DirectionComparison.AdapterCosine a = colsA.get(i);
                c.add(a.module().replace("model.layers.", "") + (a.column() == 0 && (i + 1 >= colsA.size()
                        || !colsA.get(i + 1).module().equals(a.module())) ? "" : "[" + a.column() + "]"));
                cx[i] = i;
                ya[i] = a.cosine();
                yb[i] = colsB.get(i).cosine();
            }
            Plots.bars(out.resolve("adapter_columns.png"), "Adapter B columns against their layer's direction: "
                            + Path.of(adapter).getFileName() + ", " + run, "adapter module (layer.module[column])",
                    "cos(B column, v_l) (unitless)", c,
                    List.of(Plots.series("with " + fa.getFileName(), cx, ya), Plots.series("with " + fb.getFileName(), cx, yb)));
        }
    }

    static int compare(Compare cmd) throws IOException {
        List<Path> files = cmd.files;
        if (files.size() != 2) {
            throw new IllegalArgumentException("compare-directions needs two directions files, got " + files.size()
                    + (files.isEmpty() ? "" : " " + files) + "; usage: lora4j compare-directions A.safetensors B.safetensors");
        }
        String adapter = cmd.adapter == null ? null : cmd.adapter.toString();
        String outDir = cmd.out == null ? null : cmd.out.toString();
        boolean overwrite = cmd.overwrite;
        Path fa = files.get(0);
        Path fb = files.get(1);
        Directions da = Directions.read(fa);
        Directions db = Directions.read(fb);
        List<DirectionComparison.LayerCosine> layers = DirectionComparison.layers(da, db);
        ObjectMapper json = new ObjectMapper();
        ObjectNode o = json.createObjectNode();
        o.put("a", fa.toString());
        o.put("a_sha256", TextFiles.sha256(fa));
        o.put("b", fb.toString());
        o.put("b_sha256", TextFiles.sha256(fb));
        ArrayNode arr = o.putArray("layers");
        for (DirectionComparison.LayerCosine c : layers) {
            ObjectNode n = arr.addObject();
            n.put("layer", c.layer());
            Commands.putNumber(n, "cosine", c.cosine());
            Commands.putNumber(n, "abs_cosine", c.absCosine());
            n.put("norm_a", c.normA());
            n.put("norm_b", c.normB());
        }
        List<DirectionComparison.AdapterCosine> colsA = null;
        List<DirectionComparison.AdapterCosine> colsB = null;
        if (adapter != null) {
            PeftAdapter p = PeftAdapters.load(Path.of(adapter));
            Map<String, INDArray> b = p.loraB();
            try {
                colsA = DirectionComparison.adapterColumns(da, b);
                colsB = DirectionComparison.adapterColumns(db, b);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("--adapter " + adapter + ": " + e.getMessage(), e);
            }
            o.put("adapter", adapter);
            ArrayNode cols = o.putArray("adapter_columns");
            for (int i = 0; i < colsA.size(); i++) {
                DirectionComparison.AdapterCosine c = colsA.get(i);
                ObjectNode n = cols.addObject();
                n.put("module", c.module());
                n.put("layer", c.layer());
                n.put("column", c.column());
                Commands.putNumber(n, "cosine_a", c.cosine());
                Commands.putNumber(n, "cosine_b", colsB.get(i).cosine());
                n.put("column_norm", c.columnNorm());
            }
        }
        o.put("lora4j_version", Version.get());
        if (outDir != null) {
            Path out = Path.of(outDir);
            List<RunDirectory.Input> inputs = new ArrayList<>(List.of(new RunDirectory.Input("A", fa),
                    new RunDirectory.Input("B", fb)));
            if (adapter != null) {
                inputs.add(new RunDirectory.Input("--adapter", Path.of(adapter)));
            }
            try (RunDirectory dir = RunDirectory.open(out, overwrite ? RunDirectory.Mode.OVERWRITE : RunDirectory.Mode.NEW,
                    inputs, false)) {
                AtomicFiles.writeString(out.resolve("compare.json"), o.toPrettyString() + "\n");
                StringBuilder csv = new StringBuilder();
                csv.append("# lora4j compare-directions a=").append(fa).append(" b=").append(fb)
                        .append(" lora4j_version=").append(Version.get()).append('\n');
                csv.append("layer,cosine,abs_cosine,norm_a,norm_b\n");
                for (DirectionComparison.LayerCosine c : layers) {
                    csv.append(String.format(Locale.ROOT, "%d,%.9g,%.9g,%.9g,%.9g\n", c.layer(), c.cosine(), c.absCosine(),
                            c.normA(), c.normB()));
                }
                AtomicFiles.writeString(out.resolve("layers.csv"), csv.toString());
                plot(out, fa, fb, layers, adapter, colsA, colsB);
            }
            o.put("out", out.toAbsolutePath().toString());
        }
        System.out.println(o);
        return 0;
    }
}
