# fastapi-offline: the Swagger UI and ReDoc bundles that /docs and /redoc
# serve without a CDN (balsam/server/api/docs_assets.py). nixpkgs 26.05 has
# no package of it, so it is built here from its PyPI sdist, which already
# contains the bundles (its setup.py downloads them only when an sdist is
# made, never when a wheel is built). Declared as a nixpkgs Python package
# would be, for python3.pkgs.callPackage.
{
  lib,
  python,
  buildPythonPackage,
  fetchPypi,
  setuptools,
  fastapi,
}:
buildPythonPackage rec {
  pname = "fastapi-offline";
  version = "1.7.7";
  pyproject = true;

  src = fetchPypi {
    pname = "fastapi_offline";
    inherit version;
    # PyPI's sha256 of fastapi_offline-1.7.7.tar.gz, aeeabe67dd40f867...74ed91d0.
    hash = "sha256-ruq+Z91A+GerD+ZN2N50KUnja6XzrGrrBVuu8nTtkdA=";
  };

  build-system = [ setuptools ];
  dependencies = [ fastapi ];

  # Its own tests need requests and starlette[full]; the import and the
  # bundled files are what balsam uses. pythonImportsCheck runs regardless
  # of doCheck (preDistPhases), and postInstall always runs.
  doCheck = false;
  pythonImportsCheck = [ "fastapi_offline" ];
  postInstall = ''
    for f in swagger-ui-bundle.js swagger-ui.css redoc.standalone.js favicon.png; do
      test -s $out/${python.sitePackages}/fastapi_offline/static/$f
    done
  '';

  meta = {
    description = "FastAPI without reliance on CDNs for docs";
    homepage = "https://github.com/turettn/fastapi_offline";
    license = lib.licenses.mit;
  };
}
