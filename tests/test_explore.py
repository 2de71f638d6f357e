"""ganzoo explore: the page's callbacks give ganzoo's own images (generate, render, slerp, project); the command's
options; the message without Gradio; and the page itself in headless Chromium (seed and label change the image)."""

import importlib.util
import io
import shutil
import socket
import sys
import urllib.request

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import ganzoo
from ganzoo import GanzooError, load_recipe, train
from ganzoo.cli import app as cli
from ganzoo.data import to_uint8
from ganzoo.projection import load_projection, synthesize
from ganzoo.explore import RANDOM, SHOWN, Explorer, build_app, enlarge
from ganzoo.sampling import generate, label_codes, latents, read_png, render, slerp

from test_conditional import folders, recipe as cond_recipe  # noqa: F401 (folders: a fixture)
from test_stylegan2 import TINY_SG2

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
HAVE_GRADIO = importlib.util.find_spec("gradio") is not None
HAVE_SELENIUM = importlib.util.find_spec("selenium") is not None


@pytest.fixture
def run(tiny, tmp_path):
    tiny["output"]["samples"] = 0
    return train(load_recipe(tiny), tmp_path / "run", progress=False).run_dir


@pytest.fixture
def cond_run(folders, tmp_path):  # noqa: F811
    r = cond_recipe({"name": "images", "path": str(folders), "labels": ["folder"]}, "concat")
    r["output"].update(samples=0, dir=str(tmp_path / "runs"))
    return train(load_recipe(r), tmp_path / "cond", progress=False).run_dir


def shrink(shown: np.ndarray, resolution: int) -> torch.Tensor:
    """What ``enlarge`` made back at ``resolution``: uint8 ``(C, H, W)``."""
    step = shown.shape[0] // resolution
    small = torch.from_numpy(np.ascontiguousarray(shown[::step, ::step]))
    return (small.unsqueeze(0) if small.dim() == 2 else small.permute(2, 0, 1)).contiguous()


def test_callbacks_show_the_images_of_generate_render_and_slerp(run):
    G = ganzoo.load_generator(run)
    ex = Explorer(G, name="run")
    off = ex.truncation_range[1]  # the slider's right end: no truncation
    image, caption = ex.sample(7, off)
    assert torch.equal(image, generate(G, 1, seed=7)[0])
    assert caption == "seed 7 · 16×16"
    assert not torch.equal(image, ex.sample(8, off)[0])  # another seed, another image
    assert torch.equal(ex.sample(7, 0.5)[0], generate(G, 1, seed=7, truncation=0.5)[0])  # z-space truncation (dcgan)
    assert not torch.equal(ex.sample(7, 0.5)[0], image)
    # what the page shows: the same image, each pixel a 16x16 square; the PNG to download: the image itself
    shown, caption, png = ex.show_sample(7, off)
    assert shown.shape == (SHOWN, SHOWN, 3) and shown.dtype == np.uint8
    assert torch.equal(shrink(shown, 16), image) and (shown[:16, :16] == shown[0, 0]).all()
    assert png.endswith("/run-seed7.png") and torch.equal(read_png(png), image)
    # a walk: slerp between the two seeds' latents at t, through render; its ends are the two seeds' images
    a, mid, b, caption = ex.mix(3, 9, 0.25, 1.5)
    za, zb = latents(1, G.latent_dim, 3, 1.5), latents(1, G.latent_dim, 9, 1.5)
    expected = render(G, torch.cat([za, slerp(za, zb, torch.tensor([[0.25]])), zb]), truncation=1.5, seed=3)
    assert torch.equal(torch.stack([a, mid, b]), expected)
    assert (a.int() - ex.sample(3, 1.5)[0].int()).abs().max() <= 1 and (b.int() - ex.sample(9, 1.5)[0].int()).abs().max() <= 1
    assert not torch.equal(mid, a) and not torch.equal(mid, b)
    assert caption == "seed 3 → 9 at t = 0.25 · truncation 1.5 · 16×16"  # the truncation is said, and names the download
    assert ex.show_mix(3, 9, 0.25, 1.5)[-1].endswith("/run-seed3-seed9-at0.25-t1.5.png")
    assert ex.show_sample(7, 1.5)[2].endswith("/run-seed7-t1.5.png") and ex.show_sample(7, off)[2].endswith("/run-seed7.png")
    assert (ex.mix(3, 9, 0.0, 1.5)[1].int() - a.int()).abs().max() <= 1
    outs = ex.show_mix(3, 9, 0.25, 1.5)
    assert torch.equal(shrink(outs[1], 16), mid) and torch.equal(read_png(outs[4]), mid)


def test_a_w_space_generator_truncates_in_w_and_its_slider_ends_at_off(tiny, tmp_path):
    tiny["generator"] = {"name": "stylegan2", "latent_dim": 8, **TINY_SG2}
    tiny["output"]["samples"] = 0
    G = ganzoo.load_generator(train(load_recipe(tiny), tmp_path / "sg2", progress=False).run_dir)
    ex = Explorer(G)
    assert ex.w_space and ex.truncation_range == (0.0, 1.0, 0.05)
    assert ex.truncation(1.0) is None and ex.truncation(0.7) == 0.7
    assert torch.equal(ex.sample(4, 1.0)[0], generate(G, 1, seed=4)[0])
    psi = ex.sample(4, 0.7)[0]
    assert torch.equal(psi, generate(G, 1, seed=4, truncation=0.7)[0]) and not torch.equal(psi, ex.sample(4, 1.0)[0])
    z = latents(1, G.latent_dim, 4, 0.7, G)  # w-space: z untruncated, w pulled toward its average by render
    assert torch.equal(psi, render(G, z, truncation=0.7, seed=4)[0])
    zb = latents(1, G.latent_dim, 5, 0.7, G)
    walk = render(G, torch.cat([z, slerp(z, zb, torch.tensor([[0.5]])), zb]), truncation=0.7, seed=4)
    assert torch.equal(torch.stack(ex.mix(4, 5, 0.5, 0.7)[:3]), walk)


def test_label_dropdowns_pick_the_class_that_render_is_given(cond_run):
    G = ganzoo.load_generator(cond_run)
    ex = Explorer(G)
    assert ex.space.attributes == ("folder",) and ex.space.classes == (("blue", "green", "red"),)
    blue, caption = ex.sample(3, 3.0, ("blue",))
    assert torch.equal(blue, generate(G, 1, seed=3, labels=["folder=blue"])[0]) and caption == "seed 3 · folder=blue · 16×16"
    y = torch.tensor([[G.labels.classes[0].index("blue")]])
    assert torch.equal(blue, render(G, latents(1, G.latent_dim, 3, None, G), y=y, seed=3)[0])
    red = ex.sample(3, 3.0, ("red",))[0]
    assert not torch.equal(blue, red)
    # (random): the class drawn with the seed from the training frequencies, as `ganzoo sample --label random` does
    drawn, caption = ex.sample(3, 3.0, (RANDOM,))
    assert torch.equal(drawn, generate(G, 1, seed=3, labels="random")[0])
    assert caption.split(" · ")[1] == G.labels.names(label_codes(G, 1, "random", 3))[0]
    assert ex.show_sample(3, 3.0, "blue")[2].endswith("-seed3-folder-blue.png")
    # the walk keeps one label from end to end
    a, _, b, caption = ex.mix(0, 1, 0.5, 3.0, ("green",))
    assert "folder=green" in caption and torch.equal(a, ex.mix(0, 1, 0.5, 3.0, ("green",))[0])


def test_an_uploaded_image_is_cropped_resized_and_projected(run, tmp_path):
    from ganzoo.trained import load_models
    from ganzoo.projection import prepare_image

    G, D, _, _ = load_models(run)
    ex = Explorer(G, D)
    target_image = generate(G, 1, seed=11)[0]
    upload = Image.new("RGB", (72, 48), "white")
    upload.paste(Image.fromarray(enlarge(target_image, 48)), (12, 0))  # white bars left and right: the centre crop removes them
    seen = []
    target, result = ex.project(upload, 12, progress=lambda step, steps, d: seen.append((step, steps, d)))
    assert torch.equal(target, prepare_image(upload, G.shape)) and target.shape == (3, 16, 16)
    assert result.steps == 12 and result.features == "critic" and result.space == "z"
    assert result.image.shape == (3, 16, 16) and result.distance <= result.start_distance
    assert [s for s, _, _ in seen] == list(range(1, 13)) and seen[-1][2] == pytest.approx(result.distance, abs=1e-6)
    shown_target, shown_recon, caption, png, latent = ex.show_projection(upload, 12)
    assert torch.equal(shrink(shown_target, 16), target) and torch.equal(shrink(shown_recon, 16), result.image)
    assert caption.startswith(f"distance {result.distance:.4f}") and torch.equal(read_png(png), result.image)
    z, space, y = load_projection(latent)  # the latent downloads as `ganzoo project` saves it
    assert latent.endswith("generator-upload-projection.latent.safetensors") and z.shape == (1, G.latent_dim) and space == "z"
    with torch.no_grad():
        assert torch.equal(to_uint8(synthesize(G, z, space, y))[0], read_png(png))
    with pytest.raises(GanzooError, match="upload an image"):
        ex.show_projection(None, 12)
    assert Explorer(G).project(upload, 2)[1].features == "pixels"  # no critic (an exported model): pixels alone


@pytest.mark.skipif(not HAVE_GRADIO, reason='needs Gradio 6: pip install "gradio>=6,<7"')
def test_the_page_of_a_run_has_its_critic_and_of_an_exported_model_folder_none(run):
    from ganzoo.export import export

    page = build_app(run)
    assert page.explorer.name == "run" and page.explorer.critic is not None
    api = page.get_api_info()["named_endpoints"]  # the API names its parameters as the page does
    assert [p["parameter_name"] for p in api["/sample"]["parameters"]] == ["seed", "truncation"]
    assert [p["parameter_name"] for p in api["/interpolate"]["parameters"]] == ["seed_a", "seed_b", "t", "truncation"]
    assert [p["parameter_name"] for p in api["/project"]["parameters"]] == ["image", "steps"]
    assert build_app(run / "checkpoints" / "last.safetensors").explorer.name == "run"
    folder = export(run, "folder").path
    ex = build_app(folder).explorer
    assert ex.critic is None and ex.name == folder.name
    assert torch.equal(ex.sample(5, 3.0)[0], generate(ganzoo.load_generator(run), 1, seed=5)[0])


@pytest.mark.skipif(not HAVE_GRADIO, reason='needs Gradio 6: pip install "gradio>=6,<7"')
def test_a_port_in_use_is_one_clear_message(run):
    from ganzoo.explore import explore

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(GanzooError, match=rf"^cannot serve the explorer on 127.0.0.1:{port}: the port is in use"):
            explore(run, port=port, open_browser=False, block=False)


def test_without_gradio_the_explorer_says_how_to_install_it(run, monkeypatch):
    monkeypatch.setitem(sys.modules, "gradio", None)  # `import gradio` now fails as if it were not installed
    with pytest.raises(GanzooError, match=r'^the explorer needs Gradio 6: pip install "gradio>=6,<7"$'):
        build_app(run)
    result = CliRunner().invoke(cli, ["explore", str(run), "--no-browser", "--device", "cpu"])
    assert result.exit_code == 2 and 'error: the explorer needs Gradio 6: pip install "gradio>=6,<7"' in result.output
    assert "Traceback" not in result.output


def test_cli_explore_serves_on_localhost_by_default_and_has_no_share_option(run, monkeypatch):
    import ganzoo.explore

    calls = []
    monkeypatch.setattr(ganzoo.explore, "explore", lambda run, **kw: calls.append((run, kw)))
    runner = CliRunner()
    assert runner.invoke(cli, ["explore", str(run)]).exit_code == 0
    where, options = calls[-1]
    assert where == run and options.pop("device").type in ("cpu", "cuda")
    assert options == {"host": "127.0.0.1", "port": None, "open_browser": True}
    args = ["explore", str(run), "--host", "0.0.0.0", "--port", "8123", "--no-browser", "--device", "cpu"]
    assert runner.invoke(cli, args).exit_code == 0
    assert calls[-1][1] == {"host": "0.0.0.0", "port": 8123, "open_browser": False, "device": torch.device("cpu")}
    bad = runner.invoke(cli, ["explore", str(run), "--share"])
    assert bad.exit_code == 2 and "No such option" in bad.output


# -- the page in a browser -------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _fetch(url: str) -> np.ndarray:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # 127.0.0.1, never through a proxy
    with opener.open(url, timeout=10) as response:
        return np.array(Image.open(io.BytesIO(response.read())))


@pytest.mark.skipif(not HAVE_GRADIO, reason='needs Gradio 6: pip install "gradio>=6,<7"')
@pytest.mark.skipif(not HAVE_SELENIUM, reason="needs selenium (the test extra)")
@pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="needs Debian's chromium and chromium-driver (.ci/run installs them)")
def test_the_page_in_headless_chromium_seed_and_label_change_the_image(cond_run, tmp_path, monkeypatch):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    from ganzoo.explore import explore

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    G = ganzoo.load_generator(cond_run)
    page = explore(cond_run, port=_free_port(), open_browser=False, block=False)
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync", "--window-size=1200,1000",
                "--no-proxy-server"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    wait = WebDriverWait(driver, 30, poll_frequency=0.1)

    def image_src(previous=None):
        """The shown image's address once there is one (other than ``previous``)."""
        script = "const i = document.querySelector('#sample-image img'); return i && i.complete ? i.src : null"
        return wait.until(lambda d: (src := d.execute_script(script)) and src != previous and src)

    def caption():
        return driver.find_element(By.ID, "sample-caption").text

    try:
        assert page.local_url.startswith("http://127.0.0.1:")
        driver.get(page.local_url)
        first = image_src()
        wait.until(lambda d: d.title == "ganzoo explore: cond")
        wait.until(lambda d: caption().startswith("seed 0 · "))
        assert np.array_equal(_fetch(first), enlarge(generate(G, 1, seed=0, labels="random")[0]))
        # the seed: typed into the slider's number box
        box = driver.find_element(By.CSS_SELECTOR, "#seed input[type=number]")
        box.send_keys(Keys.CONTROL, "a")
        box.send_keys("42", Keys.ENTER)
        second = image_src(first)
        wait.until(lambda d: caption().startswith("seed 42 · "))
        assert not np.array_equal(_fetch(first), _fetch(second))
        assert np.array_equal(_fetch(second), enlarge(generate(G, 1, seed=42, labels="random")[0]))
        # a class from the dropdown: the image render gives for that label, and another class another image
        shown = {}
        for name in ("red", "blue"):
            driver.find_element(By.CSS_SELECTOR, "#label-folder input").click()
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, f'#label-folder li[role=option][aria-label="{name}"]'))[0].click()
            wait.until(lambda d: caption() == f"seed 42 · folder={name} · 16×16")
            shown[name] = _fetch(image_src())
            y = torch.tensor([[G.labels.classes[0].index(name)]])
            assert np.array_equal(shown[name], enlarge(render(G, latents(1, G.latent_dim, 42, None, G), y=y, seed=42)[0]))
        assert not np.array_equal(shown["red"], shown["blue"])
        # the walk between seed A (0) and seed B (1), at t = 0.5, with the label chosen
        driver.find_element(By.XPATH, "//button[@role='tab' and contains(., 'Interpolate')]").click()
        wait.until(lambda d: d.find_element(By.ID, "mix-caption").text == "seed 0 → 1 at t = 0.50 · folder=blue · 16×16")
        mid = wait.until(lambda d: d.execute_script("const i = document.querySelector('#mix-image img'); return i && i.src"))
        assert np.array_equal(_fetch(mid), enlarge(Explorer(G).mix(0, 1, 0.5, 3.0, ("blue",))[1]))
        # an uploaded image, projected (100 steps by default)
        driver.find_element(By.XPATH, "//button[@role='tab' and contains(., 'Project')]").click()
        Image.fromarray(shown["red"]).save(tmp_path / "upload.png")  # 256 px: resized to 16 px for the generator
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#upload input[type=file]"))[0].send_keys(str(tmp_path / "upload.png"))
        wait.until(lambda d: d.execute_script("return !!document.querySelector('#upload img')"))
        driver.find_element(By.ID, "project-button").click()
        wait.until(lambda d: d.find_element(By.ID, "project-caption").text.startswith("distance "))
        assert "100 steps" in driver.find_element(By.ID, "project-caption").text
        assert wait.until(lambda d: d.execute_script("const i = document.querySelector('#projection-image img'); return i && i.src"))
        errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
        assert not errors, errors
        driver.set_window_size(1200, driver.execute_script("return document.documentElement.scrollHeight"))
        driver.save_screenshot(str(tmp_path / "explore.png"))  # the page, kept in pytest's tmp folder to look at
    finally:
        driver.quit()
        page.close()


def test_a_host_that_is_not_this_machines_is_one_line_before_anything_starts(run):
    from ganzoo.explore import _check_host

    _check_host("127.0.0.1")
    for host in ("no.such.host.invalid", "203.0.113.7"):  # a name that does not resolve; an address of another machine
        with pytest.raises(GanzooError, match=f"--host {host}: not an address of this machine"):
            _check_host(host)
    res = CliRunner().invoke(cli, ["explore", str(run), "--host", "no.such.host.invalid", "--no-browser"])
    assert res.exit_code == 2 and "not an address of this machine" in res.output
