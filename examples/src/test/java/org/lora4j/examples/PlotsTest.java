package org.lora4j.examples;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Plots: each kind writes a PNG that decodes to the stated size and a CSV that gives back the data. */
class PlotsTest {
    @TempDir
    Path dir;

    @Test
    void linesWritesPngAndCsvThatRoundTrips() throws IOException {
        double[] x = {0, 5, 10, 15};
        double[] y = {1.5, 0.1 + 0.2, Double.NaN, -3e-12};   // 0.1 + 0.2 is not 0.3: the CSV must keep every bit
        Plots.Series plain = Plots.series("train loss", x, y);
        Plots.Series band = new Plots.Series("EM rate, \"judged\"", new double[]{0, 10}, new double[]{0.2, 0.4},
                new double[]{0.1, 0.3}, new double[]{0.35, 0.5});
        Path png = dir.resolve("sub/loss.png");   // a missing parent directory is created
        Plots.lines(png, "run r1: loss", "step (optimizer steps)", "loss (nats/token)", List.of(plain, band), new double[]{10});

        assertImage(png);
        List<String> rows = Files.readAllLines(dir.resolve("sub/loss.csv"));
        assertEquals("series,x,y,lower,upper", rows.get(0));
        assertEquals(1 + 4 + 2 + 1, rows.size());
        for (int i = 0; i < 4; i++) {
            String[] f = rows.get(1 + i).split(",", -1);
            assertEquals("train loss", f[0]);
            assertEquals(x[i], Double.parseDouble(f[1]));
            if (Double.isNaN(y[i])) {
                assertEquals("", f[2], "a missing y is an empty field");
            } else {
                assertEquals(y[i], Double.parseDouble(f[2]));
            }
            assertEquals("", f[3]);
            assertEquals("", f[4]);
        }
        assertEquals("\"EM rate, \"\"judged\"\"\",10.0,0.4,0.3,0.5", rows.get(6), "a name with a comma and quotes is quoted");
        assertEquals("marker,10.0,,,", rows.get(7));
        assertNoTempFiles(dir.resolve("sub"));
    }

    @Test
    void linesWithoutIntervalsHaveThreeColumns() throws IOException {
        Path png = dir.resolve("a.png");
        Plots.lines(png, "run r1: norms", "step (optimizer steps)", "norm (Frobenius)",
                List.of(Plots.series("|B|", new double[]{1}, new double[]{2})), null);
        assertImage(png);
        assertEquals(List.of("series,x,y", "|B|,1.0,2.0"), Files.readAllLines(dir.resolve("a.csv")));
    }

    @Test
    void pathWritesStepsInOrder() throws IOException {
        // Not sorted by x: the path is drawn, and written, in the given order.
        double[] x = {0, 1, 1, 0.5, -2};
        double[] y = {0, 0, 1, 2, 2};
        int[] steps = {5, 10, 15, 20, 25};
        Path png = dir.resolve("pca_B.png");
        Plots.path(png, "run r1: PCA of B", "PC1 (a.u.)", "PC2 (a.u.)", x, y, steps);
        assertImage(png);
        List<String> rows = Files.readAllLines(dir.resolve("pca_B.csv"));
        assertEquals("series,x,y,step", rows.get(0));
        assertEquals(6, rows.size());
        for (int i = 0; i < x.length; i++) {
            String[] f = rows.get(1 + i).split(",");
            assertArrayEquals(new double[]{x[i], y[i], steps[i]},
                    new double[]{Double.parseDouble(f[1]), Double.parseDouble(f[2]), Double.parseDouble(f[3])});
        }
        // One point, one step: the colour scale still needs a range.
        Plots.path(dir.resolve("one.png"), "run r1: one", "PC1 (a.u.)", "PC2 (a.u.)", new double[]{1}, new double[]{1}, new int[]{3});
        assertImage(dir.resolve("one.png"));
    }

    @Test
    void barsWriteOneRowPerSeriesAndCategory() throws IOException {
        List<String> layers = List.of("layer 0", "layer 1", "layer 2");
        Plots.Series cos = new Plots.Series("cosine", new double[]{0, 1, 2}, new double[]{0.9, -0.2, Double.NaN},
                new double[]{0.85, -0.3, Double.NaN}, new double[]{0.95, -0.1, Double.NaN});
        Plots.Series abs = Plots.series("|cosine|", new double[]{0, 1, 2}, new double[]{0.9, 0.2, 0.5});
        Path png = dir.resolve("cos.png");
        Plots.bars(png, "run r1: direction cosines", "layer (block index)", "cosine (unitless)", layers, List.of(cos, abs));
        assertImage(png);
        List<String> rows = Files.readAllLines(dir.resolve("cos.csv"));
        assertEquals(List.of("series,category,y,lower,upper",
                "cosine,layer 0,0.9,0.85,0.95", "cosine,layer 1,-0.2,-0.3,-0.1", "cosine,layer 2,,,",
                "|cosine|,layer 0,0.9,,", "|cosine|,layer 1,0.2,,", "|cosine|,layer 2,0.5,,"), rows);
    }

    @Test
    void badInputIsRefusedWithAClearMessage() {
        double[] two = {0, 1};
        assertMessage("series 's': x has 2 points but y has 1", () -> Plots.series("s", two, new double[]{1}));
        assertMessage("series 's' is empty: no points", () -> Plots.series("s", new double[0], new double[0]));
        assertMessage("series 's': x[1] is not finite: NaN", () -> Plots.series("s", new double[]{0, Double.NaN}, two));
        assertMessage("series 's': y[0] is infinite", () -> Plots.series("s", two, new double[]{Double.POSITIVE_INFINITY, 0}));
        assertMessage("series 's': lower and upper must both be given or both be null",
                () -> new Plots.Series("s", two, two, two, null));
        assertMessage("series 's': lower[0] = 2.0 is above upper[0] = 1.0",
                () -> new Plots.Series("s", two, two, new double[]{2, 0}, new double[]{1, 2}));
        Path png = dir.resolve("x.png");
        Plots.Series s = Plots.series("s", two, two);
        assertMessage("plot has no series: nothing to draw", () -> Plots.lines(png, "t", "x (u)", "y (u)", List.of(), null));
        assertMessage("two series are named 's'", () -> Plots.lines(png, "t", "x (u)", "y (u)", List.of(s, s), null));
        assertMessage("plot " + png + ": the title must name the run, got a blank title",
                () -> Plots.lines(png, " ", "x (u)", "y (u)", List.of(s), null));
        assertMessage("plot " + png + ": both axes need a label with units, got x 'x (u)' and y ''",
                () -> Plots.lines(png, "t", "x (u)", "", List.of(s), null));
        assertMessage("vertical marker 0 is not finite: Infinity",
                () -> Plots.lines(png, "t", "x (u)", "y (u)", List.of(s), new double[]{Double.POSITIVE_INFINITY}));
        assertMessage("path: x has 2 points, y 2, steps 1", () -> Plots.path(png, "t", "x", "y", two, two, new int[]{1}));
        assertMessage("path: point 1 is not finite: (1.0, NaN)",
                () -> Plots.path(png, "t", "x", "y", two, new double[]{0, Double.NaN}, new int[]{1, 2}));
        assertMessage("path is empty: no points", () -> Plots.path(png, "t", "x", "y", new double[0], new double[0], new int[0]));
        assertMessage("bars: series 's' has 2 values but there are 1 categories",
                () -> Plots.bars(png, "t", "x", "y", List.of("a"), List.of(s)));
        assertMessage("bars: category 'a' appears twice", () -> Plots.bars(png, "t", "x", "y", List.of("a", "a"), List.of(s)));
        assertMessage("bars: no categories", () -> Plots.bars(png, "t", "x", "y", new ArrayList<>(), List.of(s)));
        assertFalse(Files.exists(png), "a refused plot writes nothing");
    }

    @Test
    void seriesCopiesItsArrays() {
        double[] y = {1, 2};
        Plots.Series s = Plots.series("s", new double[]{0, 1}, y);
        y[0] = 99;
        assertEquals(1, s.y()[0]);
    }

    @Test
    void rendersHeadless() {
        // Set by Plots before AWT loads, so a machine without a display can draw.
        Plots.csvPath(dir.resolve("x.png"));
        assertEquals("true", System.getProperty("java.awt.headless"));
        assertEquals(dir.resolve("x.csv"), Plots.csvPath(dir.resolve("x.png")));
    }

    private static void assertImage(Path png) throws IOException {
        BufferedImage image = ImageIO.read(png.toFile());
        assertNotNull(image, png + " decodes as an image");
        assertEquals(Plots.WIDTH, image.getWidth());
        assertEquals(Plots.HEIGHT, image.getHeight());
        // A drawn chart is not one flat colour.
        int first = image.getRGB(0, 0);
        boolean varied = false;
        for (int yy = 0; yy < image.getHeight() && !varied; yy += 7) {
            for (int xx = 0; xx < image.getWidth(); xx += 7) {
                if (image.getRGB(xx, yy) != first) {
                    varied = true;
                    break;
                }
            }
        }
        assertTrue(varied, png + " has something drawn");
    }

    private static void assertNoTempFiles(Path d) throws IOException {
        try (var files = Files.list(d)) {
            assertEquals(List.of(), files.filter(p -> p.getFileName().toString().endsWith(".tmp")).toList());
        }
    }

    private static void assertMessage(String expected, org.junit.jupiter.api.function.Executable call) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        assertEquals(expected, e.getMessage());
    }
}
