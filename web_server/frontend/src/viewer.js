// The interactive 3D viewer of a Gaussian splat file (scene.spz, scene.splat or scene.ply), with three.js,
// Spark (the splat renderer) and OrbitControls: drag to orbit, wheel or pinch to zoom,
// right-drag or two fingers to pan; arrow keys orbit, +/- zoom, R resets the view.
import { SparkRenderer, SplatFileType, SplatMesh } from "@sparkjsdev/spark";
import * as THREE from "three";
import { OrbitControls } from "three/addons/controls/OrbitControls.js";
import { h } from "./dom.js";

const BACKGROUND = 0x101418;
const KEY_ORBIT_RAD = Math.PI / 36;

export class SplatViewer {
  /**
   * @param {HTMLElement} container where the canvas and its help text go.
   * @param {{ name: string, url: string, size: number }} artifact the splat file (signed URL).
   */
  constructor(container, artifact) {
    this.container = container;
    this.artifact = artifact;
    /** Render frames until this time (performance.now() ms); see invalidate(). */
    this.renderUntil = 0;
    this.status = h("p", { class: "muted", id: "viewer-status", role: "status", text: `Loading ${artifact.name}…` });
    this.progress = h("progress", { id: "viewer-progress", max: 1, value: 0, "aria-label": `Downloading ${artifact.name}` });
    this.canvas = h("canvas", {
      id: "viewer-canvas",
      class: "viewer-canvas",
      tabindex: 0,
      role: "img",
      "aria-label": "Interactive 3D view of the scene. Drag to orbit, scroll or pinch to zoom, right-drag to pan; arrow keys orbit, plus and minus zoom, R resets.",
    });
    const reset = h("button", { type: "button", class: "secondary", text: "Reset view", onClick: () => this.resetView() });
    container.replaceChildren(
      h("div", { class: "viewer-frame" }, this.canvas),
      h("div", { class: "row" }, reset, h("span", { class: "muted small", text: "Drag to orbit · scroll/pinch to zoom · right-drag/two fingers to pan" })),
      this.progress,
      this.status,
    );

    this.renderer = new THREE.WebGLRenderer({ canvas: this.canvas, antialias: false });
    this.renderer.setPixelRatio(Math.min(window.devicePixelRatio || 1, 2));
    this.renderer.setClearColor(BACKGROUND, 1);
    /** @type {WebGL2RenderingContext} */
    this.gl = this.renderer.getContext();
    /** @type {WebGLSync|null} the fence after the last frame submitted */
    this.fence = null;
    this.scene = new THREE.Scene();
    this.camera = new THREE.PerspectiveCamera(50, 1, 0.01, 1000);
    // No level-of-detail tree: a job's scene is one file shown whole. Spark says when a
    // background sort lands (onDirty), so the page renders only when something changed.
    this.spark = new SparkRenderer({ renderer: this.renderer, enableLod: false, onDirty: () => this.invalidate(300) });
    this.scene.add(this.spark);
    this.controls = new OrbitControls(this.camera, this.canvas);
    this.controls.enableDamping = true;
    this.controls.dampingFactor = 0.15;
    this.home = { position: new THREE.Vector3(0, 0.35, 1).normalize(), target: new THREE.Vector3() };
    this.canvas.addEventListener("keydown", (e) => this.onKey(e));
    this.resize = () => {
      const w = Math.max(1, this.canvas.clientWidth);
      const hgt = Math.max(1, this.canvas.clientHeight);
      this.renderer.setSize(w, hgt, false);
      this.camera.aspect = w / hgt;
      this.camera.updateProjectionMatrix();
      this.invalidate();
    };
    this.observer = new ResizeObserver(this.resize);
    this.observer.observe(this.canvas);
    this.resize();
    this.resetView();
    // Render on demand: for a while after anything changed (camera, size, loading), so that
    // damping settles and Spark's background sort lands, then idle (no GPU work while still).
    this.controls.addEventListener("change", () => {
      this.invalidate();
      // The camera as text (position and target, mm): lets a test compare views without comparing pixels.
      const [p, t] = [this.camera.position, this.controls.target];
      this.canvas.dataset.view = [p.x, p.y, p.z, t.x, t.y, t.z].map((v) => v.toFixed(3)).join(",");
    });
    this.renderer.setAnimationLoop(() => {
      this.controls.update();
      if (performance.now() < this.renderUntil) {
        if (this.gpuIdle()) {
          this.renderer.render(this.scene, this.camera);
          this.fence = this.gl.fenceSync(this.gl.SYNC_GPU_COMMANDS_COMPLETE, 0);
        }
      } else if (this.gpuIdle() && !this.canvas.dataset.idle) {
        // Nothing left to draw: tests (and anyone curious) can wait for this.
        this.canvas.dataset.idle = "true";
      }
    });
    this.invalidate();
  }

  /** Download the file (fetch, so failures are reported; the bar follows the bytes) and show it. */
  async load() {
    const response = await fetch(this.artifact.url);
    if (!response.ok) throw new Error(`${this.artifact.name}: the server answered ${response.status}`);
    const bytes = await this.readWithProgress(response);
    const name = this.artifact.name;
    const fileType = name.endsWith(".spz") ? SplatFileType.SPZ : name.endsWith(".ply") ? SplatFileType.PLY : SplatFileType.SPLAT;
    this.mesh = new SplatMesh({ fileBytes: bytes, fileType, fileName: name });
    // scene.ply and scene.splat use OpenCV axes (-y up); three.js is y-up: turn them 180° about x.
    // scene.spz is stored in SPZ's RUB axes, which are three.js's.
    if (fileType !== SplatFileType.SPZ) this.mesh.rotation.x = Math.PI;
    this.scene.add(this.mesh);
    await this.mesh.initialized;
    this.frame();
    this.invalidate(3000);
    this.progress.hidden = true;
    this.status.textContent = `${this.artifact.name}: ${this.mesh.packedSplats ? this.mesh.packedSplats.numSplats.toLocaleString() : ""} splats.`;
    this.canvas.dataset.loaded = "true";
  }

  /** The response body as bytes, moving the progress bar as they arrive (the artifact's size is known). */
  async readWithProgress(response) {
    const total = this.artifact.size || Number(response.headers.get("Content-Length")) || 0;
    if (!response.body || !total) return new Uint8Array(await response.arrayBuffer());
    const bytes = new Uint8Array(total);
    const reader = response.body.getReader();
    let received = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (received + value.length > total) throw new Error(`${this.artifact.name}: more bytes than its size`);
      bytes.set(value, received);
      received += value.length;
      this.progress.value = received / total;
      this.status.textContent = `Loading ${this.artifact.name}: ${Math.round((100 * received) / total)} %`;
    }
    this.progress.value = 1;
    return received === total ? bytes : bytes.subarray(0, received);
  }

  /**
   * Set the home view: look at the splats' median centre (the files stand on the ground at y = 0,
   * the scene above it) from the capture's distance (cameras about one unit away), backing off when
   * the median splat lies farther out.
   */
  frame() {
    const centers = [];
    const stride = Math.max(1, Math.floor((this.mesh.packedSplats?.numSplats || 1) / 20000));
    this.mesh.forEachSplat((i, center) => {
      if (i % stride === 0) centers.push(center.clone().applyEuler(this.mesh.rotation));
    });
    if (!centers.length) return;
    const median = (values) => Float32Array.from(values).sort()[Math.floor(values.length / 2)];
    const target = new THREE.Vector3(median(centers.map((c) => c.x)), median(centers.map((c) => c.y)), median(centers.map((c) => c.z)));
    const distance = Math.max(1.0, 1.5 * median(centers.map((c) => c.distanceTo(target))));
    this.home = { target, position: new THREE.Vector3(0, 0.35, 1).normalize().multiplyScalar(distance).add(target) };
    this.camera.near = distance / 1000;
    this.camera.far = distance * 1000;
    this.camera.updateProjectionMatrix();
    this.resetView();
  }

  /**
   * Whether the GPU has finished the last frame. A slow GPU (or a software one) would otherwise
   * queue frames faster than it draws them, and the page would lag ever further behind.
   */
  gpuIdle() {
    if (!this.fence) return true;
    const status = this.gl.clientWaitSync(this.fence, 0, 0);
    if (status === this.gl.TIMEOUT_EXPIRED) return false;
    this.gl.deleteSync(this.fence);
    this.fence = null;
    return true;
  }

  /** Keep rendering for the next `ms` milliseconds. */
  invalidate(ms = 1500) {
    this.renderUntil = Math.max(this.renderUntil, performance.now() + ms);
    delete this.canvas.dataset.idle;
  }

  resetView() {
    // Damping keeps what is left of the last drag between frames, and rendering stops when the view is
    // idle, so a residual can wait there: without damping one update applies and clears it, and the home
    // view is then exact.
    this.controls.enableDamping = false;
    this.controls.update();
    this.camera.position.copy(this.home.position);
    this.controls.target.copy(this.home.target);
    this.controls.update();
    this.controls.enableDamping = true;
    this.invalidate();
  }

  onKey(e) {
    const offset = this.camera.position.clone().sub(this.controls.target);
    const spherical = new THREE.Spherical().setFromVector3(offset);
    switch (e.key) {
      case "ArrowLeft":
        spherical.theta -= KEY_ORBIT_RAD;
        break;
      case "ArrowRight":
        spherical.theta += KEY_ORBIT_RAD;
        break;
      case "ArrowUp":
        spherical.phi = Math.max(0.05, spherical.phi - KEY_ORBIT_RAD);
        break;
      case "ArrowDown":
        spherical.phi = Math.min(Math.PI - 0.05, spherical.phi + KEY_ORBIT_RAD);
        break;
      case "+":
      case "=":
        spherical.radius *= 0.9;
        break;
      case "-":
        spherical.radius /= 0.9;
        break;
      case "r":
      case "R":
        this.resetView();
        e.preventDefault();
        return;
      default:
        return;
    }
    e.preventDefault();
    this.camera.position.copy(this.controls.target).add(new THREE.Vector3().setFromSpherical(spherical));
    this.controls.update();
  }

  /** Stop rendering and free the GPU resources. */
  dispose() {
    this.renderer.setAnimationLoop(null);
    this.observer.disconnect();
    this.controls.dispose();
    if (this.mesh) this.mesh.dispose();
    this.renderer.dispose();
  }
}
